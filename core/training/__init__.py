"""Training: the config, backbones, model recipe, augmentation, input pipeline, feature cache, callbacks,
devices, the run engine, the run store and the process launcher.

Only ``engine`` and the modules it imports inside functions pull in TensorFlow; ``config``, ``backbones``,
``runs`` and ``launcher`` stay TensorFlow-free because the app process imports them.
"""
