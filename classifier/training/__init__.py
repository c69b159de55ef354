"""Training and evaluation: head training, the feature cache, the localiser's training,
labelled datasets and metrics. Nothing here is imported when serving."""
