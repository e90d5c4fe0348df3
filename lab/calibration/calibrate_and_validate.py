"""On a GPU: measure the calibration profile, then replay the validation traces (no CLI deps needed).

    python -m lab.calibration.calibrate_and_validate --gpu H100-SXM --profile $OUT/profile_h100.json \
        [--skip-calibrate] [--kernels] [--models llama-3.2-1b,llama-3.1-8b] [--out data/validation]
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--skip-calibrate", action="store_true")
    ap.add_argument("--models", default="llama-3.2-1b,llama-3.1-8b")
    ap.add_argument("--out", default="lab/validation/h100")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--azure", default="lab/validation/traces/azure_conv_first60s.csv")
    ap.add_argument("--no-runs", action="store_true")
    ap.add_argument("--kernels", action="store_true", help="engine with its CUDA kernels, in calibration and runs")
    a = ap.parse_args()
    if not a.skip_calibrate:
        try:
            from engine.calibrate import calibrate
            prof = calibrate(a.gpu, log=lambda m: print(m, flush=True), kernels=a.kernels)
            prof.save(a.profile)
            print(f"wrote {a.profile}", flush=True)
        except Exception as e:  # keep the runs: they are worth having against the previous profile
            import traceback
            traceback.print_exc()
            print(f"calibration failed ({e!r}); validation runs use the existing {a.profile}", flush=True)
            from engine.llm import release_gpu_memory
            release_gpu_memory()
    if not a.no_runs:
        from lab.validation_runs import run_all
        for m in a.models.split(","):
            try:
                run_all(Path(a.out), models=(m,), profile=a.profile, azure=a.azure, duration=a.duration,
                        gpu=a.gpu, log=lambda s: print(s, flush=True), kernels=a.kernels)
            except Exception as e:
                import traceback
                traceback.print_exc()
                print(f"validation runs for {m} failed: {e!r}", flush=True)


if __name__ == "__main__":
    main()
