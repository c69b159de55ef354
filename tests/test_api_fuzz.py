"""The API as a third-party client sees it: schemathesis (requirements-dev.txt) makes requests from the
served OpenAPI document, including methods and data it does not allow, and checks every answer against
it (`--checks all`), against gunicorn as shipped, on the database this run uses."""
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.server import ROOT, get_json, gunicorn

SEED, EXAMPLES, MAX_SECONDS = 1, 25, 40  # bounded: one run takes seconds here
DOCUMENT = "/api/v1/openapi.json"


def schemathesis(url: str, cwd: Path, schema: str | None = None) -> subprocess.CompletedProcess:
    """One run, as docs/api.md gives it, with the repository's schemathesis.toml; `schema`: a document file
    to use in place of the served one."""
    source = [schema, "--url", url] if schema else [url + DOCUMENT]
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(ROOT / "schemathesis.toml"), "run", *source,
         "--checks", "all", "--seed", str(SEED), "--max-examples", str(EXAMPLES), "--max-time", str(MAX_SECONDS),
         "--max-failures", "1", "--generation-database", "none", "--no-color"],
        cwd=cwd, capture_output=True, text=True, timeout=MAX_SECONDS + 60)


def this_runs_database() -> dict[str, str]:
    """The server on the run's PostgreSQL server when it has one (`.ci/run`), else its own SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    return {"DATABASE_URL": url} if url.startswith(("postgres://", "postgresql://")) else {}


def answered(tmp_path: Path, status: int) -> int:
    """How many of the server's answers had `status`, from its access log."""
    return sum(f'" {status} ' in line for line in (tmp_path / "gunicorn.log").read_text().splitlines())


def test_every_answer_is_what_the_document_says_and_a_mismatch_is_found(tmp_path, trained_model_dir,
                                                                      backbone_weights):
    """With the upload rates as shipped, the generated uploads are refused 400 until the refused-upload
    rate runs out, then 429: both are checked against the document."""
    with gunicorn(tmp_path, trained_model_dir, backbone_weights, workers=1, IDCLASS_UPLOAD_RATES=None,
                  IDCLASS_REFUSED_UPLOAD_RATES=None, **this_runs_database()) as (url, _):
        run = schemathesis(url, tmp_path)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert all(answered(tmp_path, status) for status in (200, 400, 405, 429)), "an answer was never checked"
        document = get_json(url + DOCUMENT)
        del document["paths"]["/api/v1/classify"]["post"]["responses"]["429"]  # what every upload gets by now
        wrong = tmp_path / "openapi-without-429.json"
        wrong.write_text(json.dumps(document))
        run = schemathesis(url, tmp_path, schema=str(wrong))
        assert run.returncode != 0 and "Undocumented status code" in run.stdout, run.stdout[-6000:]
    assert answered(tmp_path, 500) == 0
