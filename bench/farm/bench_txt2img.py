#!/usr/bin/env python3
"""bench_txt2img.py - what the farm costs on top of a render: a tiny-model
txt2img job through tesserad + Redis + a worker, next to the same render run
directly (`tessera render --repeat`: model loaded once, sampling + decode +
PNG encoding per render), measured in the same run.

    python3 bench/farm/bench_txt2img.py [jobs] [steps]      (defaults 40, 20)

Phases:
  direct   `tessera render JOB --repeat N --threads 1`: seconds per render;
  farm 1   one worker (--threads 1), N jobs submitted at once, wall time from
           the first submission to the last job's final state / N;
  farm 2   two workers (--threads 1 each) on the same N jobs: jobs/s.
The farm figure includes everything a client pays for except HTTP download:
validation, Redis, claim, progress reports, PNG storage, final state.
Overhead = farm 1 / direct - 1 (goal: <= 5%). Results go to docs/PERF.md.
The job: sd1-tiny (tests/golden/models), 64x64, Euler a, batch 1.
Needs the CLIP vocabulary (scripts/fetch-clip-vocab.sh)."""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import harness  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
JOB = {"type": "txt2img", "prompt": "a photo of a cat", "negative_prompt": "blurry", "seed": 1,
       "sampler_name": "Euler a", "steps": STEPS, "width": 64, "height": 64, "model": "sd1-tiny", "rng": "CPU"}


def models_dir(tmp):
    d = os.path.join(tmp, "models")
    os.makedirs(d)
    os.symlink(os.path.join(harness.REPO, "tests", "golden", "models", "sd1-tiny"), os.path.join(d, "sd1-tiny"))
    return d


def direct(tmp, md):
    path = os.path.join(tmp, "job.json")
    with open(path, "w") as f:
        json.dump(JOB, f)
    p = subprocess.run([harness.CLI, "render", path, "--models", md, "--out", os.path.join(tmp, "out"),
                        "--threads", "1", "--repeat", str(N)], capture_output=True, text=True, check=True)
    line = [l for l in p.stderr.splitlines() if l.startswith("{")][-1]
    return json.loads(line)["seconds_per_render"]


def farm(tmp, md, workers):
    with harness.Farm(workers=workers, worker_args=["--models", md, "--threads", "1"], lease_ms=10000) as f:
        # warm: every worker loads the model once before timing
        for j in [f.submit(dict(JOB, seed=-1)) for _ in range(workers * 2)]:
            f.wait(j["id"], timeout=120)
        t0 = time.monotonic()
        ids = [f.submit(dict(JOB, seed=i))["id"] for i in range(N)]
        for i in ids:
            d = f.wait(i, timeout=600)
            assert d["state"] == "succeeded", d
        return (time.monotonic() - t0) / N


def main():
    tmp = tempfile.mkdtemp(prefix="tessera-bench-")
    md = models_dir(tmp)
    d = direct(tmp, md)
    f1 = farm(tmp, md, 1)
    f2 = farm(tmp, md, 2)
    d2 = direct(tmp, md)  # again, to see the machine's drift within the run
    dm = (d + d2) / 2
    print("direct render (1 thread):  %.1f ms/job  (%.1f, %.1f)" % (dm * 1e3, d * 1e3, d2 * 1e3))
    print("farm, 1 worker:            %.1f ms/job  = %.2f jobs/s, overhead %+.1f%% vs direct" %
          (f1 * 1e3, 1 / f1, (f1 / dm - 1) * 100))
    print("farm, 2 workers:           %.1f ms/job  = %.2f jobs/s (%.2fx one worker)" % (f2 * 1e3, 1 / f2, f1 / f2))


if __name__ == "__main__":
    main()
