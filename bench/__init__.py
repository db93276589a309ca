"""Side-by-side benchmarks: imagekit against a peer or the native pipeline, in one run, as ratios."""
