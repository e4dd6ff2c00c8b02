"""`python -c "import interestevo"` run from the folder that holds the clone: the clone's top folder
(named like the package, without an __init__.py) must not shadow the editable install as a
namespace package. The editable mode pyproject.toml sets decides, so the test builds an editable
wheel with this repository's pyproject.toml around a stand-in package (no extension to compile)."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_editable_install_wins_over_the_clone_folder_of_the_same_name(tmp_path):
    clone = tmp_path / "interestevo"  # `git clone .../interestevo` makes this folder
    (clone / "interestevo").mkdir(parents=True)
    (clone / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (clone / "README.md").write_text("stand-in\n")
    (clone / "interestevo" / "__init__.py").write_text("TimeLSTM = 'the installed package'\n")
    wheels, site_dir = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    site_dir.mkdir()
    build = subprocess.run([sys.executable, "-c", "import setuptools.build_meta as b, sys; "
                            "print(b.build_editable(sys.argv[1]))", str(wheels)],
                           cwd=clone, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = wheels / build.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:  # what pip would put into site-packages
        for name in archive.namelist():
            if "/" not in name:
                (site_dir / name).write_bytes(archive.read(name))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -S: only the site folder made here, not this machine's own installs of interestevo.
    code = f"import site; site.addsitedir({str(site_dir)!r}); from interestevo import TimeLSTM; print(TimeLSTM)"
    run = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "the installed package", run.stderr[-2000:]
