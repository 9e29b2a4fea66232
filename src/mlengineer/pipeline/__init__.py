"""The training run as users start it: ``train`` (table in, saved and recorded bundle out) and the
scikit-learn estimators ``AutoClassifier`` / ``AutoRegressor`` around it."""
