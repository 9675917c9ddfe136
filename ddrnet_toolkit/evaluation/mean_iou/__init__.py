"""The Mean IoU `evaluate` module (load it with `evaluate.load(ddrnet_toolkit.MEAN_IOU_METRIC_PATH)`)."""
