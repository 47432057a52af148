"""Network search, `tinycnn search` and `tinycnn.search`: the smallest network that meets a budget, found by Optuna on one machine
(a journal file, processes sharing it) or on Ray, chosen on a validation split and confirmed
on the test set over seeds."""
