"""Does the operator grow without bound? A long churn on a private control plane.

    .venv/bin/python benchmarks/scale/bench_soak.py --minutes 30

Starts a private control plane and ``mlops operator run`` (as `bench_scale.py`
does), creates ``--deployments`` settled ModelDeployments that tick the whole
time, then churns TrainingJobs until ``--minutes`` have passed: each round
creates ``--batch`` suspended TrainingJobs, waits until every one has a status,
and deletes them (their Jobs go with them). Every ``--sample`` seconds it
prints the operator's RSS, CPU share, open file descriptors and threads; at the
end, the RSS growth per 10 minutes over the second half of the run (a leak
keeps growing after the warm-up; an allocator settling does not), and the
rounds and objects churned.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench_scale import (
    DEPLOYMENTS,
    NAMESPACE,
    Api,
    StatusWatch,
    cpu_seconds,
    create,
    create_validated_version,
    memory,
    model_deployment,
    private_operator,
)


def _sample(pid: int) -> tuple[float, float, int, int]:
    """(RSS MiB, CPU seconds, open fds, threads) of `pid`."""
    rss, _ = memory(pid)
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return rss, cpu_seconds(pid), fds, threads


def soak(api: Api, pid: int, *, minutes: float, batch: int, deployments: int, every: float) -> None:
    """Run the churn and print the samples and the summary."""
    create_validated_version(api)
    for i in range(deployments):
        create(api, f"md-{i}", DEPLOYMENTS, model_deployment(f"md-{i}"))
    watch = StatusWatch(api)
    started = time.monotonic()
    end = started + minutes * 60
    samples: list[tuple[float, float]] = []
    last_sample, last_cpu = started - every, cpu_seconds(pid)
    rounds = created = 0
    print(" minute   RSS MiB   CPU %   fds  threads  rounds  TrainingJobs")
    while time.monotonic() < end:
        names = [f"soak-{rounds}-{i}" for i in range(batch)]
        for name in names:
            create(api, name)
        watch.wait(names, timeout=600)
        api.kubectl("delete", "trainingjobs", f"--namespace={NAMESPACE}", "--wait=false",
                    *names)  # fmt: skip
        rounds, created = rounds + 1, created + batch
        now = time.monotonic()
        if now - last_sample >= every:
            rss, cpu, fds, threads = _sample(pid)
            share = (cpu - last_cpu) / (now - last_sample) * 100
            last_sample, last_cpu = now, cpu
            minute = (now - started) / 60
            samples.append((minute, rss))
            print(f"{minute:7.1f} {rss:9.1f} {share:7.1f} {fds:5} {threads:8} {rounds:7}"
                  f" {created:13}", flush=True)  # fmt: skip
    watch.stopped.set()
    half = [(m, r) for m, r in samples if m >= minutes / 2]
    if len(half) >= 2:
        slope = statistics.linear_regression([m for m, _ in half], [r for _, r in half]).slope
        print(f"RSS growth over the second half: {slope * 10:+.2f} MiB per 10 minutes "
              f"({half[0][1]:.1f} -> {half[-1][1]:.1f} MiB)")  # fmt: skip
    print(f"{rounds} rounds, {created} TrainingJobs created, reconciled and deleted; "
          f"{deployments} ModelDeployments ticking throughout")  # fmt: skip


def main() -> int:
    """Bring the private control plane up, soak, tear it down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--batch", type=int, default=50, help="TrainingJobs per round")
    parser.add_argument("--deployments", type=int, default=50, help="ModelDeployments ticking")
    parser.add_argument("--sample", type=float, default=60, help="seconds between samples")
    args = parser.parse_args()
    with private_operator() as (api, operator):
        soak(api, operator.pid, minutes=args.minutes, batch=args.batch,
             deployments=args.deployments, every=args.sample)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
