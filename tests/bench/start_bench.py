"""Process start, with tests/bench/spawn_bench (configurations interleaved; per configuration the
median time per start, and the paired ratio: the median over rounds of the ratio to "no preload"
in the same round, with its ~95% interval):
- /bin/true: no preload, the empty floor, the floor plus the front's dlsym loop, the front
  inert / active / out of scope, proxychains-ng preloaded;
- start plus one name lookup (resolve_once), where an active front loads its engine: the release
  engine (everything linked in) and, through AWF_SHIM_CORE, the packager build's engine, which
  loads the system's shared Abseil, simdjson, Zydis and libstdc++ (the engine as it shipped before).
Each set ends with "no preload" again: an A/A control, whose ratio is the noise of the run."""
import subprocess

import bench_env as E

AGAIN, LOOKUP_AGAIN = "no preload (A/A control)", "no preload, localhost (A/A control)"


def spawn_bench(build, rounds, batch, argv, configs, env):
    cmd = [build.tool("spawn_bench"), str(rounds), str(batch), *argv]
    for label, cfg_env in configs:
        cmd += ["--", label, *E.env_args(cfg_env)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"spawn_bench failed: {out.stderr.strip()}")
    print(out.stdout, end="")
    results = {}
    for line in out.stdout.splitlines()[1:]:
        label, median, _ratio, fastest, _fratio, paired, ci = line.rsplit(None, 6)
        results[label.strip()] = {"median": float(median), "fastest": float(fastest), "paired": float(paired),
                                  "ci": float(ci)}
    return results


SHARED_ENGINE = "front, AWF_SHIM=1, localhost, shared-library engine"


def run(build, rounds, lookup_rounds, pc_conf, shared_engine=None):
    floor = E.base_env(LD_PRELOAD=build.tool("libpreload_floor.so"))
    dlsym = E.base_env(LD_PRELOAD=build.tool("libpreload_dlsym.so"))
    configs = [
        ("no preload", E.plain()),
        ("empty preload (floor)", floor),
        ("floor + the front's dlsym loop", dlsym),
        ("front, AWF_SHIM unset", E.front_unset(build)),
        ("front, AWF_SHIM=1", E.front_active(build)),
        ("front, out of scope", E.front_active(build, AWF_SHIM_ONLY="copilot")),
        ("proxychains-ng (preloaded)", E.proxychains_preloaded(pc_conf)),
        (AGAIN, E.plain()),  # A/A control: how far two identical configurations drift apart here
    ]
    print(f"== process start: /bin/true, {rounds} rounds x 50 starts, interleaved (per start: median and fastest"
          " round; paired: median over rounds of the ratio within a round)")
    start = spawn_bench(build, rounds, 50, ["/bin/true"], configs, E.plain())

    routed = dict(AWF_BENCH_NAME=E.ROUTED_NAME)
    lookups = [
        ("no preload, localhost", E.plain()),
        ("front, AWF_SHIM unset, localhost", E.front_unset(build)),
        ("front, AWF_SHIM=1, localhost", E.front_active(build)),
        *([(SHARED_ENGINE, E.front_active(build, AWF_SHIM_CORE=shared_engine))] if shared_engine else []),
        ("front, AWF_SHIM=1, routed name", E.front_active(build, **routed)),
        ("proxychains-ng, routed name", dict(E.proxychains_preloaded(pc_conf), **routed)),
        (LOOKUP_AGAIN, E.plain()),
    ]
    print(f"\n== process start + first getaddrinfo (resolve_once), {lookup_rounds} rounds x 20 starts "
          "(an active front loads its engine at the first lookup)")
    first = spawn_bench(build, lookup_rounds, 20, [build.tool("resolve_once")], lookups, E.plain())
    inert = first["front, AWF_SHIM unset, localhost"]["median"]
    engine = first["front, AWF_SHIM=1, localhost"]["median"] - inert
    print(f"engine load (AWF_SHIM=1 minus unset, same lookup): {engine:+.0f} µs per process")
    if shared_engine:
        print(f"shared-library engine load (same): {first[SHARED_ENGINE]['median'] - inert:+.0f} µs per process")
    return {"start": start, "first_lookup": first}
