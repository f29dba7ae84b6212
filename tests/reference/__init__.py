"""Independent reference implementations (NumPy e-prop, torch BPTT, Bellec task); no snncc."""
