"""The Redis store: several service processes share users' state, and no update is lost."""
from __future__ import annotations

import json
import threading

import httpx
import numpy as np
import redis

from .conftest import Server
from .test_http import T0, catalogue


def test_two_processes_on_one_redis_lose_no_update(small_run, redis_server, empty_tracker):
    items = catalogue(small_run)
    servers = [Server(small_run, store=redis_server.url) for _ in range(2)]
    users = ["shared-a", "shared-b", "shared-c"]
    posted = {u: [] for u in users}
    lock = threading.Lock()

    def client(n):
        # Every client writes every user, alternating between the two processes; equal times keep
        # any interleaving in order, so each request must be applied.
        with httpx.Client(timeout=60) as http:
            for j in range(12):
                user = users[(n + j) % len(users)]
                event = {"user": user, "item": items[(n * 13 + j) % len(items)], "time": T0, "id": f"{n}-{j}"}
                answer = http.post(f"{servers[(n + j) % 2].url}/v1/events", json={"events": [event]})
                assert answer.status_code == 200 and answer.json()["applied"] == 1, answer.text
                with lock:
                    posted[user].append(event)

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client_redis = redis.Redis.from_url(redis_server.url)
        for user in users:
            stored = [json.loads(e) for e in client_redis.lrange(f"interestevo:events:{user}", 0, -1)]
            by_id = {e["id"]: e for e in posted[user]}
            assert sorted(event_id for _, _, event_id in stored) == sorted(by_id)  # each applied once
            assert all(item == str(by_id[event_id]["item"]) and t == T0 for item, t, event_id in stored)
            assert int(client_redis.hget(f"interestevo:user:{user}", "num_events")) == len(posted[user])
            # The state is that of the stored events applied in the stored order: none skipped.
            tracker = empty_tracker(small_run)
            order = [by_id[event_id]["item"] for _, _, event_id in stored]
            tracker.update([user] * len(order), order, [T0] * len(order))
            expected = tracker.recommend(user, at=T0 + 60, k=5)[0]
            for server in servers:  # both processes answer from the same state
                got = server.client.get(f"/v1/users/{user}/recommendations", params={"at": T0 + 60, "k": 5}).json()
                assert [x["item"] for x in got["items"]] == [x["item"] for x in expected["items"]]
                np.testing.assert_allclose([x["score"] for x in got["items"]],
                                           [x["score"] for x in expected["items"]], atol=1e-5)
        # A user forgotten through one process is forgotten for the other.
        assert servers[0].client.delete("/v1/users/shared-a").json()["forgotten"] is True
        assert servers[1].client.get("/v1/users/shared-a/recommendations").json()["cold_start"] is True
        assert not client_redis.exists("interestevo:user:shared-a", "interestevo:events:shared-a",
                                       "interestevo:ids:shared-a")
        assert not client_redis.sismember("interestevo:users", "shared-a")
    finally:
        for server in servers:
            server.stop()
