"""PGF-guided data selection: which sources each arm trains on, and the statistics of the arms."""
