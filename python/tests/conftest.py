"""Fixtures: the default model, the kvsteer command to compare with, and two
vector files made by the command (cache and act kind) from real traces.

Environment (set by tests/python.sh): KVS_CLI (the kvsteer binary), KVS_MODEL,
KVS_DATA, KVS_TEST_THREADS, KVS_SOURCE_DIR (the repository, for the header)."""

import os
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest

import kvsteer

SOURCE = Path(os.environ.get("KVS_SOURCE_DIR", Path(__file__).resolve().parents[2]))
MODEL = os.environ.get("KVS_MODEL", str(SOURCE / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
DATA = Path(os.environ.get("KVS_DATA", SOURCE / "../shared/data"))
THREADS = int(os.environ.get("KVS_TEST_THREADS", "1"))
CLI = os.environ.get("KVS_CLI", str(SOURCE / "build/kvsteer"))
TRACES = DATA / "traces/arc_challenge.jsonl"
# random shot selection: "similar" would first embed every trace question
# under the sanitizers (tests/python.sh sets KVS_SANITIZE=1) the library is
# many times slower: one pair and shorter generations there
SANITIZED = os.environ.get("KVS_SANITIZE") == "1"
N_PAIRS = 1 if SANITIZED else 2
N_NEW = 8 if SANITIZED else 16
PAIRS = ["--pairs", str(N_PAIRS), "--shots", "1", "--select", "random"]


def cli(*args: str) -> str:
    """stdout of `kvsteer ARGS` (which must succeed)."""
    r = subprocess.run([CLI, *args], capture_output=True)
    assert r.returncode == 0, f"kvsteer {' '.join(args[:2])}: {r.stderr.decode(errors='replace')}"
    return r.stdout.decode("utf-8", "replace")


def cli_run(*args: str) -> str:
    """The text `kvsteer run` prints, without its final newline."""
    out = cli("run", "-m", MODEL, "-t", str(THREADS), *args)
    assert out.endswith("\n")
    return out[:-1]


@pytest.fixture(scope="session")
def model() -> kvsteer.Model:
    return kvsteer.Model(MODEL)


@pytest.fixture(scope="session")
def vec_files(tmp_path_factory: pytest.TempPathFactory) -> Tuple[str, str]:
    """A cache and an act vector file written by `kvsteer extract`."""
    d = tmp_path_factory.mktemp("vectors")
    files = []
    for kind in ("cache", "act"):
        f = str(d / f"{kind}.gguf")
        cli("extract", "-m", MODEL, "--traces", str(TRACES), *PAIRS, "--kind", kind, "-t", str(THREADS), "-q",
            "-o", f)
        files.append(f)
    return files[0], files[1]


@pytest.fixture(scope="session")
def dumped_pairs() -> Tuple[List[str], List[str]]:
    """The prompt pairs `kvsteer extract` used, from `kvsteer pairs --dump`."""
    out = cli("pairs", "-m", MODEL, "--traces", str(TRACES), *PAIRS, "-t", str(THREADS), "-q", "--dump")
    pos, neg = [], []
    for block in out.split("=== pair ")[1:]:
        body = block.split("\n--- positive ---\n", 1)[1]
        p, n = body.split("\n--- negative ---\n", 1)
        assert n.endswith("\n")
        pos.append(p)
        neg.append(n[:-1])
    assert len(pos) == N_PAIRS
    return pos, neg
