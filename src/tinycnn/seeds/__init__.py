"""Several seeds of one configuration: one after another, stacked in one network, or in
processes side by side (runner.py), and their statistics (stats.py)."""
