# Models arrive with the runs and registry issue (#4).
