"""Score the held-out runs under protocol v1 (docs/validation_protocol.md), as written.

    python -m lab.heldout_score [--data lab/validation/heldout/h200] [--reps 5]

Writes `score_v1.json` and `score_v1.md` beside the runs: per-cell errors of the calibrated model (H200 profile)
and the roofline, the counts with trivially met cells apart, per-replica counts, the replica spread, and the
cross-GPU prediction (H100 profile for these H200 runs). About two minutes on a laptop core.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import yaml

from lab.paths import ROOT
from planner.validate import PROTOCOL_V1, protocol_cells, validate

DATA = ROOT / "lab" / "validation" / "heldout" / "h200"
GRID = ROOT / "lab" / "validation" / "heldout" / "grid.yaml"
PROFILES = {"H200 profile": ROOT / "planner/data/profiles/h200.json.gz",
            "H100 profile (cross-GPU)": ROOT / "planner/data/profiles/h100.json.gz"}
# the hashes docs/validation_protocol.md froze; a different file is scored, but the report says so
FROZEN = {"h200.json.gz": "22909e75bea95e50a47b0e80c2f5da01578af8b37a68673d64fd3a08fc98061d",
          "h100.json.gz": "730bcfd72550d5ff33bf0aa885aaf46a248c6886558584ad1413a47dd0d48e6a",
          "grid.yaml": "ee4245684ecf33a20cb1e53bae205c72247542305dcb4e02c9d6e225606c883c",
          "grid2.yaml": "4743d555bb3fa10c9daf3d1e90aef26030158dd586a5dd106eaef48408097a47"}


# grids 3-7 (protocol sections "Grid 3" ... "Grid 7"): the grid's hash as registered, and the H100 profile merged
# by the grid's rule (later profile changes make a re-score say it differs)
FROZEN_BY_GRID = {"grid3.yaml": {"grid3.yaml": "7363a53a30607fb0c9df7c77992c4152d7ccd48499b2bc4741c3df67e2e79283",
                                 "h100.json.gz": "376debf983a20e10a9292232cea32a7310e839d18b4aab2e0e1b47c1a21f6dcb"},
                  "grid4.yaml": {"grid4.yaml": "53e9ef83329edff61bc5a6a828e112d1b162b6c7b95ff6cc2180b1f84be323c8",
                                 "h100.json.gz": "00e987caa5bc961aa9bb3a51313232ca86f06bce1d19b4e0c79a12ef8b5fb776"},
                  "grid5.yaml": {"grid5.yaml": "a9727961009270054bad19972719d45d94820a692044ad3f06935d300b4d8012",
                                 "h100.json.gz": "7dca09b8229d1461ccedb47979b01c803c44ec36817a842ab6b62dc52c53732c"},
                  "grid6.yaml": {"grid6.yaml": "968a728379c74b29d49458903978fc517a7d09716ad5950ece2c0aea7489cfc4",
                                 "h100.json.gz": "02cac1b264e8f95f4be038ae1749f596960e228693227630715df6ce512c4801"},
                  "grid7.yaml": {"grid7.yaml": "59c59b4a46daa72cfa19237b0ee839797f46de2e6e6c7baf9b82dab8b0ef80f7",
                                 "h200.json.gz": "74459c6f442648d91ab74c2e68d79da8c7b9be626664922f1ce18eeb2cabd252"},
                  "grid8.yaml": {"grid8.yaml": "be1259c0227238e17227099c02cb0928f4c5102fe33212a97d67558afb94abb0",
                                 "h100.json.gz": "35b4b206d781ebbe945a049917af7a25970aee4819aeaf61b2acbdcc68a30947"},
                  "grid9.yaml": {"grid9.yaml": "1ae44789a576a0f844d5eb87035f02801afc6c958f375eefc242709f58353390",
                                 "h100.json.gz": "d5bc19f40e58aa13bce1f1e61568663301db66adbe2527bc6d427111e39f7305",
                                 "h200.json.gz": "0ab919378219d54e669d3baf9890317833460e3d60ed0e08ba64f9775ab09300"},
                  "grid10.yaml": {"grid10.yaml": "b0113be8e7ee0b9ddfa6895af44fc9b9b145564b9c935bfdb81e28f28c059ecf",
                                  "h100.json.gz": "d5bc19f40e58aa13bce1f1e61568663301db66adbe2527bc6d427111e39f7305",
                                  "h200.json.gz": "0ab919378219d54e669d3baf9890317833460e3d60ed0e08ba64f9775ab09300"},
                  "grid11.yaml": {"grid11.yaml": "c334cdd39b7862391dde4ad716c7c1055e9b55053e5d296eac2d95006d179f37",
                                  "h100.json.gz": "d1af2b93d6acf759146ea0d17aedec5ed7a08c0dcf4aada8dd21080a07ade657",
                                  "h200.json.gz": "a7979ba2b5d6aa3ef1dc992745c642cde330ec1338743b92e938c7d4934a0ded"},
                  # as registered in commit 6ca42cb (protocol section "Grid 12"), entered here after its runs
                  "grid12.yaml": {"grid12.yaml": "4df6ea8ce1ea38e8137bd808ade20b7266b9bc4be4b62a285d1e21b3d50446c1",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "a7979ba2b5d6aa3ef1dc992745c642cde330ec1338743b92e938c7d4934a0ded"},
                  "grid13.yaml": {"grid13.yaml": "89004cc58c54fbfb3b0775ae0a44a2b50bf75c3184ff10ec8a71baed1e06d3cf",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "9d9556e6f7d5d13d67acd0038460a8c8581d6089f5a8e45bc358c54cdd94c581"},
                  # entered with the registration (protocol section "Grid 14"), before any of its runs
                  "grid14.yaml": {"grid14.yaml": "7592bf336668edfb0f4fde3de22634eb34950b8600caf4769bda3e544989cb1e",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "55144d5b0ee192ac3cf96d68afcc2d2cd75b02252b3be3db494f7d3facaf2e0d"},
                  "grid15.yaml": {"grid15.yaml": "9bd53a97220560c53440b152109ad853cd7c4374e5ed64649db6e56b20047420",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "55144d5b0ee192ac3cf96d68afcc2d2cd75b02252b3be3db494f7d3facaf2e0d"},
                  "grid16.yaml": {"grid16.yaml": "943433b395952a922d143cb3c590fb37042300805895cb6e13970058c356e804",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "d35bb0cc4efd8b4f3cb712ddcc981d945dc5e77e296f25cf74c342b4bacd3d99"},
                  "grid17.yaml": {"grid17.yaml": "62be23549a0f6a958a8288090de481226788b65eb08ec852833cc64d6054a298",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "d35bb0cc4efd8b4f3cb712ddcc981d945dc5e77e296f25cf74c342b4bacd3d99"},
                  "grid18.yaml": {"grid18.yaml": "fd01788bff267bc7ad09e883581ebdf880dbead244705466709588bdae384a7d",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "d35bb0cc4efd8b4f3cb712ddcc981d945dc5e77e296f25cf74c342b4bacd3d99"},
                  "grid19.yaml": {"grid19.yaml": "c49576e9c5b1da9f4439b84929d03bdcc9548f2bc5c1bff243a1fefc2c5b70dd",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "d35bb0cc4efd8b4f3cb712ddcc981d945dc5e77e296f25cf74c342b4bacd3d99"},
                  # the H200 profile with round 48's Qwen2.5-7B tables, and the one before (git show c95ee53:...)
                  "grid20.yaml": {"grid20.yaml": "b5bb8dd9803c1a9e5e67b184dbfd3adf7210fc28fbef9390765c6f3d1ecbc9e9",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "0b656fb2ac1468fb2760412604e577f2abb87ac2a947cc596cb1561798b73395",
                                  "h200_d35bb0cc.json.gz":
                                      "d35bb0cc4efd8b4f3cb712ddcc981d945dc5e77e296f25cf74c342b4bacd3d99"},
                  # h200.json.gz is merged after grid 21's round (FP8 TP=2 iterations) and cannot be frozen before
                  # it; the profile before (git show 391b031:...) is
                  "grid21.yaml": {"grid21.yaml": "9134a420ac282b6fc5887883ee050af04b41279d7bc53b13229e1e7fbec7a3c2",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200_0b656fb2.json.gz":
                                      "0b656fb2ac1468fb2760412604e577f2abb87ac2a947cc596cb1561798b73395"},
                  "grid22.yaml": {"grid22.yaml": "cc6f8e0b1d901b5e18163239471d194dd2548aa3a965ee0c419b03e9a8facf8f",
                                  "h100.json.gz": "61e9bcaaf92cce9db93848947210fe5f8edda26ef475450af9623323a7e79b5d",
                                  "h200.json.gz": "ed20f9368df7f28f1abaeb84b1bd25d561808d7bee8d230a1d7a02e76d9f7417"}}


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def counts(cells: list[dict]) -> dict:
    hard = [c for c in cells if not c["trivial"]]
    return {"cells": len(cells), "ok": sum(c["ok"] for c in cells), "nontrivial": len(hard),
            "nontrivial_ok": sum(c["ok"] for c in hard), "trivial": len(cells) - len(hard),
            "worst": max((abs(c["error"]) for c in cells), default=0.0),
            "worse_than_25pct": sum(abs(c["error"]) > 0.25 for c in cells)}


def profiles_for(grid: dict, served_gpu: str | None = None, own_profile: Path | None = None) -> dict[str, Path]:
    """Which profiles score a grid: its own (`profile`, the machine's GPU kind) and the cross-GPU one
    (`cross_profile`); grids 1-2 name neither and are scored as they were (H200, H100 cross-GPU). Runs served
    on the cross profile's GPU (a lent machine of the other kind) are scored with that profile as their own.
    `own_profile` replaces the served GPU's own profile (a comparison a grid registered, e.g. the profile before a
    change), named as such."""
    if "profile" not in grid:
        found = dict(PROFILES)
    else:
        own, cross = ROOT / grid["profile"], ROOT / grid["cross_profile"]
        if served_gpu and served_gpu != grid["gpu"]:
            found = {f"{served_gpu} profile ({cross.name}; grid registered for {grid['gpu']})": cross,
                     f"{own.name} (cross-GPU)": own}
        else:
            found = {f"{grid['gpu']} profile": own, f"{cross.name} (cross-GPU)": cross}
    if own_profile is None:
        return found
    first = next(iter(found))
    return {f"{first} as {own_profile.name}": own_profile} | {k: v for k, v in found.items() if k != first}


def score(data: Path, reps: int, grid_path: Path = GRID, own_profile: Path | None = None) -> dict:
    out = {"protocol": "v1", "grid": grid_path.name, "limits": PROTOCOL_V1, "hashes": {}, "by_profile": {}}
    grid = yaml.safe_load(grid_path.read_text())
    served = {json.loads(p.read_text())["gpu"] for p in data.glob("*.meta.json")}
    if len(served) > 1:
        raise SystemExit(f"{data}: runs of several GPU kinds ({sorted(served)}); score each kind apart")
    profiles = profiles_for(grid, next(iter(served), None), own_profile)
    frozen = {**FROZEN, **FROZEN_BY_GRID.get(grid_path.name, {})}
    for p in (*profiles.values(), grid_path):
        out["hashes"][p.name] = {"sha256": sha(p), "frozen": frozen.get(p.name, "not frozen"),
                                 "same": sha(p) == frozen.get(p.name)}
    have = {json.loads(p.read_text())["label"] for p in data.glob("*.meta.json")}
    out["not_run"] = [r["id"] for r in grid["runs"] if r["id"] not in have]
    for name, prof in profiles.items():
        rows = validate(data, str(prof), jitter=True, reps=reps)
        cells = protocol_cells(rows, "calibrated")
        n_rep = min(len(r["engine_replays"]) for r in rows)
        out["by_profile"][name] = {
            "counts": counts(cells), "roofline_counts": counts(protocol_cells(rows, "roofline")),
            "per_replica": [counts(protocol_cells(rows, "calibrated", ref=k)) for k in range(n_rep)],
            "cells": cells,
            "runs": [{k: r.get(k) for k in ("run", "model", "tp", "quantization", "kv_cache_dtype", "lengths",
                                            "knobs", "grid_load", "load", "calibrated_model")}
                     | {"completed": r["engine"]["completed"]} for r in rows]}
    return out


def markdown(res: dict) -> str:
    L = [f"# Held-out validation, protocol v1, {res['grid']}: results", "",
         "Scored by `python -m lab.heldout_score` against docs/validation_protocol.md as written. Limits: "
         + ", ".join(f"{m} {v:.0%}" for m, v in PROTOCOL_V1.items()) + " (throughput only at load >= 0.95).", ""]
    for n, h in res["hashes"].items():
        L.append(f"- `{n}`: sha256 {h['sha256'][:16]}... " + ("= the frozen hash" if h["same"] else
                                                               f"**differs from the frozen {h['frozen'][:16]}...**"))
    L += ["", "Not run (deadline on the device): " + (", ".join(res["not_run"]) or "none"), ""]
    for name, b in res["by_profile"].items():
        c, rc = b["counts"], b["roofline_counts"]
        L += [f"## {name}", "",
              f"**Calibrated: {c['nontrivial_ok']} of {c['nontrivial']} non-trivial cells within limits** "
              f"({c['ok']} of {c['cells']} with the {c['trivial']} trivially met cells); worst cell "
              f"{c['worst']:.1%}; cells worse than 25%: {c['worse_than_25pct']}. Roofline: {rc['nontrivial_ok']} of "
              f"{rc['nontrivial']} non-trivial ({rc['ok']} of {rc['cells']}).", "",
              "Against each replica alone: " + "; ".join(
                  f"replica {k}: {pc['nontrivial_ok']}/{pc['nontrivial']} non-trivial" for k, pc in
                  enumerate(b["per_replica"])), ""]
        runs = {r["run"]: r for r in b["runs"]}
        metrics = list(PROTOCOL_V1)
        L += ["| run | TP | format | load | " + " | ".join(m.replace("_", " ") for m in metrics) + " |",
              "|---|---|---|---|" + "---|" * len(metrics)]
        by_run: dict = {}
        for cell in b["cells"]:
            by_run.setdefault(cell["run"], {})[cell["metric"]] = cell
        for run, cs in by_run.items():
            r = runs[run]
            txt = []
            for m in metrics:
                if m not in cs:
                    txt.append("")
                    continue
                x = cs[m]
                t = f"{x['error'] * 100:+.1f}%"
                t = t if x["ok"] else f"**{t}**"
                txt.append(t + ("ᵗ" if x["trivial"] else ""))
            kv = r.get("kv_cache_dtype", "auto")
            fmt = r["quantization"] + (f", KV {kv}" if kv != "auto" else "")
            L.append(f"| {run} | {r['tp']} | {fmt} | {r['grid_load']} | " + " | ".join(txt) + " |")
        L += ["", "ᵗ trivially met (the roofline meets it too). Replica spread (|r0 - r1| / reference) per cell is in "
              "score_v1.json.", ""]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.heldout_score")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--grid", type=Path, default=GRID)
    ap.add_argument("--tag", default="", help="write score_v1_TAG.*: a re-score after a model change, kept beside "
                    "the score as first run (the protocol keeps both)")
    ap.add_argument("--no-prefill-bins", action="store_true",
                    help="score with the calibrated model's linear prefill overhead only (CalibratedCostModel."
                         "prefill_token_bins off, the default since grid 15): the comparison grid 15 registered")
    ap.add_argument("--prefill-bins", action="store_true",
                    help="score with the per-token-bin prefill correction on (the model grid 15 was registered with)")
    ap.add_argument("--decode-graph-padding", action=argparse.BooleanOptionalAction, default=None,
                    help="charge decode steps at their CUDA graph's batch (CalibratedCostModel.decode_graph_padding;"
                         " the comparison grid 16 registered); default: the model's setting")
    ap.add_argument("--decode-layout-query-weight", type=float, default=None,
                    help="CalibratedCostModel.decode_layout_query_weight (0: a layout's decode attention carried by KV "
                         "bytes alone, the model before grid 22; the comparison grid 22 registered); default: the "
                         "model's setting")
    ap.add_argument("--own-profile", type=Path, default=None,
                    help="score the grid's own GPU with this profile file instead of the grid's (a comparison a "
                         "grid registered, e.g. the profile before a change; write it with --tag)")
    a = ap.parse_args(argv)
    from planner.cost import CalibratedCostModel
    if a.no_prefill_bins or a.prefill_bins:
        CalibratedCostModel.prefill_token_bins = bool(a.prefill_bins)
    if a.decode_graph_padding is not None:
        CalibratedCostModel.decode_graph_padding = a.decode_graph_padding
    if a.decode_layout_query_weight is not None:
        CalibratedCostModel.decode_layout_query_weight = a.decode_layout_query_weight
    res = score(a.data, a.reps, a.grid, a.own_profile)
    stem = "score_v1" + (f"_{a.tag}" if a.tag else "")
    (a.data / f"{stem}.json").write_text(json.dumps(res, indent=1, default=float))
    md = markdown(res)
    (a.data / f"{stem}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
