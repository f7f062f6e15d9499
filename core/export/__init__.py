"""Export: a run's model in the formats people deploy, each checked against the app's model first."""
