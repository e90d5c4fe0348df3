"""The contract the planner and the engine share: catalogs, serving knobs, the calibration profile schema,
trace readers, request records and the input error. It imports neither of them, nor torch nor SimPy."""
