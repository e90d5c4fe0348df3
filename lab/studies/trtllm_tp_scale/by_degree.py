"""What one all-reduce scale per TP degree would be for the trtllm preset, fitted on set 7's fit_tp rows only
(the committed preset uses one scale for every degree). A study, not a product change: it says whether a
degree-dependent term is worth a fresh held-out set.

    python -m lab.studies.trtllm_tp_scale.by_degree        # about 15 s on 2 cores
"""
from __future__ import annotations

from planner import public
from planner.stacks import load_stack


def main() -> None:
    rows = public.load_rows()
    stack = load_stack("trtllm")
    print(f"committed: allreduce_scale {stack.allreduce_scale} on {len(stack.fit.tp_rows)} fit_tp rows")
    print("| TP | GPU | rows | scale fitted on these rows alone | RMS log residual at that scale | at 1 |")
    print("|---|---|---|---|---|---|")
    for tp in (2, 4, 8):
        for gpu in ("H100-SXM", "H200", None):
            sel = [r for r in rows if r.stack == "trtllm" and r.split == "fit_tp" and r.tp == tp
                   and (gpu is None or r.gpu == gpu)]
            if not sel:
                continue
            f = public.fit_allreduce_scale("trtllm", sel, stack)
            print(f"| {tp} | {gpu or 'both'} | {len(sel)} | {f['allreduce_scale']:.2f} | "
                  f"{f['tp_residual_rms_log']:.3f} | {f['tp_residual_rms_log_at_1']:.3f} |")


if __name__ == "__main__":
    main()
