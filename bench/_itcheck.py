import sys, statistics, torch
sys.path.insert(0, '.')
from engine import calibrate as C
from engine.weights import build_model
from engine.llm import quiet_gc
from planner.catalog import MODELS
m = build_model(MODELS['llama-3.2-1b'], seed=0, dtype=torch.bfloat16, device='cuda')
for rep in range(2):
    with quiet_gc():
        rows = C.measure_iterations(m, 0.00282, kernels=True)
    for lo, hi in ((0, 3000), (3000, 10**6)):
        x = [r.seconds for i, r in enumerate(rows) if r.chunks == 0 and r.decodes > 48 and lo <= i < hi]
        if x: print(rep, lo, len(x), 'decode>48 median %.3f ms' % (statistics.median(x) * 1e3), flush=True)
