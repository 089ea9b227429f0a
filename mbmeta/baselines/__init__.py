"""Model-free baselines from stable-baselines3 (PPO, SAC) on the task families, logged like ``mbmeta evaluate``.

An optional extra: ``pip install -e '.[baselines]'``. Nothing here imports stable-baselines3 at import time; the
modules that subclass its classes (:mod:`~mbmeta.baselines.callback`, :mod:`~mbmeta.baselines.wandb_output`) are
imported only by :func:`mbmeta.baselines.runner.train_baseline`, after :func:`~mbmeta.baselines.extra.import_sb3`
has checked that the library is there.

- :mod:`~mbmeta.baselines.extra`: the lazy import and its one-line error;
- :mod:`~mbmeta.baselines.envs`: the task wrapper (a train task per reset, or one fixed test task);
- :mod:`~mbmeta.baselines.policy`: a trained sb3 model as the collector's batched policy;
- :mod:`~mbmeta.baselines.curve`: the learning curve (CSV, written atomically) and "steps to reach";
- :mod:`~mbmeta.baselines.callback`: the periodic evaluation during training (an sb3 callback);
- :mod:`~mbmeta.baselines.runner`: training, periodic and final evaluation, saving and resuming.
"""
