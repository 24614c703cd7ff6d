"""Outcomes: what shoppers did with the recommendations, champion and challenger as an experiment.

* :mod:`.arms`: which users get the challenger's list (a keyed hash of user id and experiment);
* :mod:`.stats`: intervals, differences between arms, p-values and their multiple-comparison
  correction, pure numpy;
* :mod:`.report`: per-arm metrics of one export date from its rows and the events after it;
* :mod:`.simulate`: a synthetic shop whose shoppers respond to the published lists (demos, tests).
"""
