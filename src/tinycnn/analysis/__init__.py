"""Reading what runs did: report and compare, plots, experiments, the LR finder, the bench."""
