"""Distillation losses: exact flows give exact targets, per-sample guidance matches the formula, balance is a ratio."""
import torch

from distill.losses import adaptive_weight, consistency_target, gt_loss, guided_velocity, teacher_loss, teacher_states
from fada_stream.sampling import combine_multi_cfg, get_ts


def straight_flow(x0):
    """Velocity of the flow whose data is the single point x0: every trajectory is a straight line."""
    return lambda x, t: (x - x0) / t.view(-1, *[1] * (x.ndim - 1)).clamp_min(1e-6)


def test_teacher_states_follow_an_exact_flow_to_the_grid_times():
    x0, noise = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    ts = get_ts(2)
    x_k, x_next = teacher_states(straight_flow(x0), noise, ts, 1, substeps=3)
    torch.testing.assert_close(x_k, 0.5 * x0 + 0.5 * noise)  # x_t = (1 - t) x0 + t eps at t = 0.5
    torch.testing.assert_close(x_next, x0)


def test_a_student_equal_to_the_teacher_with_one_substep_has_zero_loss():
    noise = torch.randn(2, 3, 4, 2, 2)
    flow = lambda x, t: torch.sin(x) * t.view(-1, 1, 1, 1, 1)  # noqa: E731  any velocity field
    ts = get_ts(4)
    x_k, x_next = teacher_states(flow, noise, ts, 2, substeps=1)
    w, v = torch.ones(2, 3), flow(x_k, ts[2].expand(2))
    assert teacher_loss(v, x_k, x_next, float(ts[2]), float(ts[3]), w) < 1e-12
    assert teacher_loss(v + 1.0, x_k, x_next, float(ts[2]), float(ts[3]), w) > 0


def test_ground_truth_loss_is_zero_for_the_exact_velocity_and_ignores_motion_frames():
    x0, eps = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    w = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    xt = 0.5 * x0 + 0.5 * eps
    v = straight_flow(x0)(xt, torch.full((2,), 0.5))
    assert gt_loss(v, xt, x0, 0.5, w) < 1e-10
    wrong = v + torch.where(torch.arange(3).view(1, 3, 1, 1, 1) == 0, 5.0, 0.0)  # exact, except on the first frame
    assert gt_loss(wrong, xt, x0, 0.5, w) > 0  # sample 1's first frame is generated, so it counts
    assert gt_loss(wrong[:1], xt[:1], x0[:1], 0.5, w[:1]) < 1e-10  # sample 0's first frame is a given motion frame


def test_guided_velocity_applies_each_samples_own_scales():
    def model(x, t, drop_ref, drop_audio, ref):
        return x + (~drop_ref).float().view(-1, 1, 1, 1, 1) * ref[:, None] + 3 * (~drop_audio).float().view(-1, 1, 1, 1, 1)

    x, ref = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 4, 2, 2)
    s_ref, s_audio = torch.tensor([1.0, 2.0]), torch.tensor([4.0, 1.5])
    v = guided_velocity(model, s_ref, s_audio, ref=ref)(x, torch.rand(2))
    yes, no = torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
    branches = [model(x, None, no, no, ref), model(x, None, yes, no, ref), model(x, None, yes, yes, ref)]
    for i in range(2):
        expected = combine_multi_cfg(*(b[i] for b in branches), float(s_ref[i]), float(s_audio[i]))
        torch.testing.assert_close(v[i], expected)


def test_adaptive_weight_keeps_the_ground_truth_share_fixed():
    assert adaptive_weight(2.0, 0.5, 0.25) == 1.0  # lambda * EMA(L_gt) = alpha * EMA(L_teacher)
    assert adaptive_weight(1.0, 0.0, 0.25) > 0  # no division by zero


def test_consistency_target_is_the_students_clean_estimate_one_teacher_step_down():
    x0, noise = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    x_hi = 0.25 * x0 + 0.75 * noise  # t = 0.75 on the straight flow to x0
    # On an exact flow, one teacher step lands on the same line and a student equal to the teacher maps it to x0.
    goal = consistency_target(straight_flow(x0), straight_flow(x0), x_hi, 0.75, 0.5)
    torch.testing.assert_close(goal, x0)
    # With other fields: x^ = x_hi + (t_lo - t_hi) v_T(x_hi, t_hi), then f(x^, t_lo) = x^ - t_lo v_S(x^, t_lo).
    v_t = lambda x, t: torch.cos(x) * t.view(-1, 1, 1, 1, 1)  # noqa: E731
    v_s = lambda x, t: x * (1.0 + t.view(-1, 1, 1, 1, 1))  # noqa: E731
    x_lo = x_hi - 0.25 * torch.cos(x_hi) * 0.75
    torch.testing.assert_close(consistency_target(v_t, v_s, x_hi, 0.75, 0.5), x_lo - 0.5 * x_lo * 1.5)
    # At the boundary the target is the teacher's step itself: f(x, 0) = x, no student pass.
    torch.testing.assert_close(consistency_target(v_t, None, x_hi, 0.25, 0.0), x_hi - 0.25 * torch.cos(x_hi) * 0.25)


def test_consistency_target_carries_no_gradient():
    w = torch.ones(1, requires_grad=True)
    student = lambda x, t: w * x  # noqa: E731
    goal = consistency_target(lambda x, t: x, student, torch.randn(1, 2, 4, 2, 2), 0.5, 0.25)
    assert not goal.requires_grad

