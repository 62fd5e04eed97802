"""Dialog scripts: the format managers write, its validator, the renderer and the pure engine."""
