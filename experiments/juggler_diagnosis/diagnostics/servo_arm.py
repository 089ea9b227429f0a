"""Validation motors: does the fitted servo arm (``ServoArmBallContact``) carry to motors unlike the trained ones?

Loads a model trained with ``--model.known_physics mbmeta.envs.juggler_arm:ServoArmBallContact``, records the same
random-action episodes as ``arm_gain.py`` (half the action box, nominal ball, each ``--gears`` motor strength, the
same seeds) and prints its one-step joint error there at strength 1 and at the strength it adapts to the episodes'
own transitions (the whole model, ``complete`` with ``adapt``'s state: for ``ServoArmBallPush`` the ball's push
included; angle error in centiradians, rate error in rad/s), beside the arm's fitted constants.
Usage: ``python experiments/juggler_diagnosis/diagnostics/servo_arm.py --checkpoint <model.ckpt>``
"""

from __future__ import annotations

import torch
from arm_gain import arguments, joint_errors, record

from mbmeta.envs.juggler_arm import ServoArmBallContact
from mbmeta.models.checkpoint import load_dynamics


def main(argv: list[str] | None = None) -> None:
    """Print, per motor strength, the servo arm's one-step joint error at strength 1 and at its adapted strength."""
    args = arguments(__doc__.splitlines()[0], "a model trained with ServoArmBallContact or ServoArmBallPush", argv)
    torch.set_num_threads(1)
    physics = load_dynamics(args.checkpoint).physics
    if not isinstance(physics, ServoArmBallContact):
        raise SystemExit(f"--checkpoint: a model told ServoArmBallContact is needed, got {type(physics).__name__}")
    constants = {
        name: [round(v, 4) for v in (t.exp() if name.startswith("log_") else t).flatten().tolist()]
        for name, t in physics.arm.named_parameters()
    }
    print("fitted arm:", {name.removeprefix("log_"): value for name, value in constants.items()})
    for gear in (float(g) for g in args.gears.split(",")):
        context = record(gear, args.episodes, args.seed)
        with torch.no_grad():
            state = physics.adapt(context, None)  # [1, P]: log damping scale, log strength (, log ball-mass scale)
            at_one = physics.arm(context.obs[0], context.action[0], 1.0)
            obs, action = context.obs[None], context.action[None]  # [E = 1, B = 1, N, ...]
            adapted = physics.complete(obs, context.next_obs[None], state, action=action)[0, 0, :, 0:6]
        true = context.next_obs[0, :, 0:6]
        scales = ", ".join(f"{v:.3f}" for v in state[0].exp().tolist())
        print(f"gear {gear:g} ({context.obs.shape[1]} steps): the arm alone at strength 1 {joint_errors(at_one, true)}")
        print(f"  the model at its adapted state ({scales}): {joint_errors(adapted, true)}")


if __name__ == "__main__":
    main()
