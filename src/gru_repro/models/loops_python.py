"""The units' loops over time in plain torch ops: the Python backend of the loop contract.

Same functions, argument names, argument order and division of work as ``csrc/loops.cpp``
(the C++ backend); :mod:`gru_repro.models.kernels` picks one of the two and every unit calls
it the same way (``loops.<unit>_forward(...)`` / ``loops.<unit>_backward(...)``). The units
(tanh_rnn.py, gru.py, lstm.py) do what lies outside the loops: the input projections before,
the weight gradients after. The equations are those of :mod:`gru_repro.models.reference`.

Conventions (both backends): time-major (T, B, K) tensors, states (B, H), gate blocks stacked
along the last dimension in torch.nn's order; the buffers passed in are written in place.

Why not literally the C++ code's steps: a torch call costs about 5 us whatever its size, and at
the paper's sizes (B = 1..16, H = 36..400) an elementwise op on one step is nearly all call
overhead. So each backward computes the elementwise factors the C++ loop computes per step
(sigmoid and tanh derivatives) for all steps at once, in a few whole-sequence ops before its
loop, which then only multiplies, accumulates and does the recurrent product: the same
results, 3 to 6 torch calls per step instead of 10 to 20 (measured for the paper GRU's
backward, T = 200, one thread: per-step factors take 6.2 ms against 3.9 ms at H = 46, batch 1,
and 10.2 against 7.8 ms at H = 227). Per-step views are made once with
``unbind``: slicing inside the loop is not free either.

Member layout (a population of P runs, models/population_fused.py): every tensor gains a
leading member dimension, (T, B, K) -> (P, T, B, K), states (P, B, H), weights (P, ., .),
biases and peepholes (P, .). Each step's recurrent product is then one batched product
(``baddbmm_``/``bmm``: member p's B rows times member p's weights) and every elementwise op
runs once over all members. 3-d weights select it; the single run's 2-d path is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gru_repro.models.recurrent import previous_states


def _stacked(weight: Tensor) -> bool:
    """Whether ``weight`` is a population's (P, K, N) rather than one run's (K, N)."""
    return weight.dim() == 3


def _time_dim(weight: Tensor) -> int:
    """The time dimension of the sequences a loop with ``weight`` runs on: 1 with members."""
    return 1 if _stacked(weight) else 0


# --- tanh RNN: h_t = tanh(a_t), a_t = W x_t + b + U h_{t-1} -----------------------------------


def tanh_forward(out: Tensor, h0: Tensor, w_hh_t: Tensor) -> None:
    """out (T, B, H): W x_t + b in, h_t out; h0 (B, H); w_hh_t (H, H) = U^T.

    ``tanh`` costs several times ``sigmoid`` in torch on CPU, so from batch 8 on (where the
    elementwise work shows; below it the call overhead does, and the two extra passes over
    the sequence cost more than they save) the loop runs on s_t = (h_t + 1) / 2 =
    sigmoid(2 a_t): 2 a_t = 2 (W x_t + b - U 1) + 4 U s_{t-1}, one ``addmm_`` and one
    ``sigmoid_`` per step, h = 2 s - 1 after the loop.
    """
    addmm_ = Tensor.baddbmm_ if _stacked(w_hh_t) else Tensor.addmm_
    steps = out.unbind(_time_dim(w_hh_t))
    if out.shape[-2] < SIGMOID_FORM_MIN_BATCH:
        h = h0
        for out_t in steps:
            h = addmm_(out_t, h, w_hh_t).tanh_()
        return
    ones_product = w_hh_t.sum(-2)  # U 1: (H,), or (P, H) -> (P, 1, 1, H) with members
    if _stacked(w_hh_t):
        ones_product = ones_product[:, None, None, :]
    out.sub_(ones_product)  # W x + b - U 1; the factor 2 goes into the first addmm_ (beta)
    s = h0.add(1.0).mul_(0.5)  # s_{-1} = (h0 + 1) / 2
    for out_t in steps:
        s = addmm_(out_t, s, w_hh_t, beta=2.0, alpha=4.0).sigmoid_()
    out.mul_(2.0).sub_(1.0)


# Batch from which tanh_forward's sigmoid form is faster (measured at H = 100 and 400, one
# thread: about 15% slower than tanh at batch 1, 10-25% faster from batch 8 on).
SIGMOID_FORM_MIN_BATCH = 8


def tanh_backward(grad_pre: Tensor, grad_hn: Tensor, out: Tensor, weight_hh: Tensor) -> None:
    """grad_pre (T, B, H): dL/dh_t from above in, dL/da_t out; grad_hn (B, H) = dL/dh_{T-1}
    from h_n; out (T, B, H) = h_t; weight_hh (H, H) = U.

    Per step: dL/da_t = (dL/dh_t + dL/da_{t+1} U) (1 - h_t^2).
    """
    addmm_ = Tensor.baddbmm_ if _stacked(weight_hh) else Tensor.addmm_
    time = _time_dim(weight_hh)
    dtanh = torch.addcmul(out.new_ones(()), out, out, value=-1.0)  # (T, B, H) 1 - h_t^2
    grad_steps, dtanh_steps = grad_pre.unbind(time), dtanh.unbind(time)
    grad_steps[-1].add_(grad_hn)
    grad_steps[-1].mul_(dtanh_steps[-1])
    for t in range(grad_pre.shape[time] - 1, 0, -1):
        addmm_(grad_steps[t - 1], grad_steps[t], weight_hh).mul_(dtanh_steps[t - 1])


# --- the paper's GRU: r, z = sigmoid(.), h~ = tanh(W x + U (r * h) + b), h = lerp(h, h~, z) ---


def paper_gru_forward(
    gates: Tensor, h0: Tensor, u_rz_t: Tensor, u_n_t: Tensor, reset_h: Tensor, out: Tensor
) -> None:
    """gates (T, B, 3H): input projections in, [r, z, h~] out; h0 (B, H); u_rz_t (H, 2H);
    u_n_t (H, H); reset_h (T, B, H) <- r_t * h_{t-1}; out (T, B, H) <- h_t."""
    hidden, time = out.shape[-1], _time_dim(u_rz_t)
    addmm_ = Tensor.baddbmm_ if _stacked(u_rz_t) else Tensor.addmm_
    rz_steps = gates[..., : 2 * hidden].unbind(time)
    r_steps, z_steps, cand_steps = (g.unbind(time) for g in gates.split(hidden, dim=-1))
    h = h0
    for rz, r, z, cand, rh, h_new in zip(
        rz_steps, r_steps, z_steps, cand_steps, reset_h.unbind(time), out.unbind(time), strict=True
    ):
        addmm_(rz, h, u_rz_t).sigmoid_()
        torch.mul(r, h, out=rh)
        addmm_(cand, rh, u_n_t).tanh_()
        h = torch.lerp(h, cand, z, out=h_new)


def paper_gru_backward(
    grad_out: Tensor,
    grad_h: Tensor,
    gates: Tensor,
    h0: Tensor,
    out: Tensor,
    u_rz: Tensor,
    u_n: Tensor,
    grad_pre: Tensor,
) -> Tensor:
    """grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1}, used as a buffer; gates (T, B, 3H) =
    [r, z, h~]; h0 (B, H); out (T, B, H) = h_t; u_rz (2H, H); u_n (H, H); grad_pre (T, B, 3H)
    <- dL/d[a_r, a_z, a_n]. Returns dL/dh0 (B, H).

    Per step, with dh = dL/dh_t: g_z = dh (h~ - h_{t-1}) z (1 - z), g_n = dh z (1 - h~^2),
    drh = g_n U = dL/d(r h_{t-1}), g_r = drh r (1 - r) h_{t-1}, and dL/dh_{t-1} =
    grad_out[t-1] + dh (1 - z) + drh r + [g_r, g_z] U_rz.
    """
    lead, hidden, time = grad_out.shape[:-1], grad_out.shape[-1], _time_dim(u_rz)
    steps = grad_out.shape[time]
    addmm_ = Tensor.baddbmm_ if _stacked(u_rz) else Tensor.addmm_
    mm = torch.bmm if _stacked(u_rz) else torch.mm
    r, z, cand = gates.split(hidden, dim=-1)
    prev = previous_states(h0, out)
    keep = 1.0 - z
    k_zn = gates.new_empty(*lead, 2, hidden)  # the factors of g_z, g_n
    torch.sub(cand, prev, out=k_zn[..., 0, :]).mul_(z).mul_(keep)
    torch.addcmul(z, z, cand * cand, value=-1.0, out=k_zn[..., 1, :])
    k_r = torch.addcmul(r, r, r, value=-1.0).mul_(prev)  # r (1 - r) h_{t-1}, times drh
    g_r, g_rz = grad_pre[..., :hidden].unbind(time), grad_pre[..., : 2 * hidden].unbind(time)
    g_n = grad_pre[..., 2 * hidden :].unbind(time)
    g_zn = grad_pre[..., hidden:].view(*lead, 2, hidden).unbind(time)
    k_zn, k_r, keep, r = k_zn.unbind(time), k_r.unbind(time), keep.unbind(time), r.unbind(time)
    carry = grad_out.unbind(time)
    # Two (B, H) buffers take turns holding dL/dh_t; a (B, 1, H) view of each broadcasts
    # against the stacked (z, n) factors.
    grad_next = torch.empty_like(grad_h)
    grad_h3, grad_next3 = grad_h.unsqueeze(-2), grad_next.unsqueeze(-2)
    grad_reset_h = torch.empty_like(grad_h)  # (B, H) dL/d(r_t * h_{t-1})
    for t in range(steps - 1, -1, -1):
        torch.mul(grad_h3, k_zn[t], out=g_zn[t])
        mm(g_n[t], u_n, out=grad_reset_h)
        torch.mul(grad_reset_h, k_r[t], out=g_r[t])
        if t > 0:
            torch.addcmul(carry[t - 1], grad_h, keep[t], out=grad_next)
        else:
            torch.mul(grad_h, keep[t], out=grad_next)
        addmm_(grad_next.addcmul_(grad_reset_h, r[t]), g_rz[t], u_rz)
        grad_h, grad_next, grad_h3, grad_next3 = grad_next, grad_h, grad_next3, grad_h3
    return grad_h


# --- torch.nn's GRU: n = tanh(W_n x + b_in + r * (U_n h + b_hn)), h = lerp(n, h, z) ------------


def reset_after_gru_forward(
    gates: Tensor, h0: Tensor, w_hh_t: Tensor, bias_hh: Tensor, recur: Tensor, out: Tensor
) -> None:
    """gates (T, B, 3H): W x + b_ih in, [r, z, n] out; h0 (B, H); w_hh_t (H, 3H); bias_hh
    (3H,); recur (T, B, 3H) <- U h_{t-1} + b_hh; out (T, B, H) <- h_t."""
    hidden, time = out.shape[-1], _time_dim(w_hh_t)
    addmm = torch.addmm
    if _stacked(w_hh_t):  # (P, 3H) biases against (P, B, 3H) rows
        addmm, bias_hh = torch.baddbmm, bias_hh.unsqueeze(-2)
    rz_steps = gates[..., : 2 * hidden].unbind(time)
    rec_rz = recur[..., : 2 * hidden].unbind(time)
    r_steps, z_steps, n_steps = (g.unbind(time) for g in gates.split(hidden, dim=-1))
    rec_n = recur[..., 2 * hidden :].unbind(time)
    h = h0
    for t, (rec, h_new) in enumerate(zip(recur.unbind(time), out.unbind(time), strict=True)):
        addmm(bias_hh, h, w_hh_t, out=rec)
        rz_steps[t].add_(rec_rz[t]).sigmoid_()
        n_steps[t].addcmul_(r_steps[t], rec_n[t]).tanh_()
        h = torch.lerp(n_steps[t], h, z_steps[t], out=h_new)


def reset_after_gru_backward(
    grad_out: Tensor,
    grad_h: Tensor,
    gates: Tensor,
    recur: Tensor,
    h0: Tensor,
    out: Tensor,
    weight_hh: Tensor,
    grad_recur: Tensor,
    grad_n: Tensor,
) -> Tensor:
    """grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1}, used as a buffer; gates (T, B, 3H) =
    [r, z, n]; recur (T, B, 3H) = U h_{t-1} + b_hh; h0 (B, H); out (T, B, H) = h_t; weight_hh
    (3H, H); grad_recur (T, B, 3H) <- dL/d(U h + b_hh); grad_n (T, B, H) <- dL/d(pre-activation
    of n). Returns dL/dh0 (B, H).

    Per step, with dh = dL/dh_t: g_n = dh (1 - z) (1 - n^2), grad_recur = [g_n rec_n r (1 - r),
    dh (h_{t-1} - n) z (1 - z), g_n r], dL/dh_{t-1} = grad_out[t-1] + dh z + grad_recur U.
    """
    lead, hidden, time = grad_out.shape[:-1], grad_out.shape[-1], _time_dim(weight_hh)
    steps = grad_out.shape[time]
    addmm_ = Tensor.baddbmm_ if _stacked(weight_hh) else Tensor.addmm_
    r, z, n = gates.split(hidden, dim=-1)
    prev = previous_states(h0, out)
    k_n = (1.0 - z) * (1.0 - n * n)
    k_z = (prev - n) * z * (1.0 - z)
    # the factors of dL/d(U_r h + b_hr) and dL/d(U_n h + b_hn) on g_n, as one (B, 2, H) op
    k_rn = torch.stack([recur[..., 2 * hidden :] * r * (1.0 - r), r], dim=-2)
    g_rec = grad_recur.unbind(time)
    g_rec_z = grad_recur[..., hidden : 2 * hidden].unbind(time)
    g_rec_rn = grad_recur.view(*lead, 3, hidden)[..., ::2, :].unbind(time)
    g_n, g_n3 = grad_n.unbind(time), grad_n.unsqueeze(-2).unbind(time)
    z_steps, carry = z.unbind(time), grad_out.unbind(time)
    k_n, k_z, k_rn = k_n.unbind(time), k_z.unbind(time), k_rn.unbind(time)
    grad_next = torch.empty_like(grad_h)
    for t in range(steps - 1, -1, -1):
        torch.mul(grad_h, k_n[t], out=g_n[t])
        torch.mul(grad_h, k_z[t], out=g_rec_z[t])
        torch.mul(g_n3[t], k_rn[t], out=g_rec_rn[t])
        if t > 0:
            torch.addcmul(carry[t - 1], grad_h, z_steps[t], out=grad_next)
        else:
            torch.mul(grad_h, z_steps[t], out=grad_next)
        addmm_(grad_next, g_rec[t], weight_hh)
        grad_h, grad_next = grad_next, grad_h
    return grad_h


# --- LSTM (i, f, g, o), optional diagonal peepholes V_i, V_f (on c_{t-1}), V_o (on c_t) --------


def lstm_forward(
    gates: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh_t: Tensor,
    peephole: Tensor | None,
    cells: Tensor,
    tanh_cells: Tensor,
    out: Tensor,
) -> None:
    """gates (T, B, 4H): input projections in, [i, f, g, o] out; h0, c0 (B, H); w_hh_t
    (H, 4H); peephole (3, H) = [V_i; V_f; V_o] or None; cells, tanh_cells, out (T, B, H) <-
    c_t, tanh(c_t), h_t."""
    lead, hidden, time = out.shape[:-1], out.shape[-1], _time_dim(w_hh_t)
    steps = out.shape[time]
    addmm_ = Tensor.baddbmm_ if _stacked(w_hh_t) else Tensor.addmm_
    a_steps = gates.unbind(time)
    if_steps = gates[..., : 2 * hidden].view(*lead, 2, hidden).unbind(time)
    i_steps, f_steps, g_steps, o_steps = (a.unbind(time) for a in gates.split(hidden, dim=-1))
    c_steps, c3_steps = cells.unbind(time), cells.unsqueeze(-2).unbind(time)  # (B, H), (B, 1, H)
    tc_steps, h_steps = tanh_cells.unbind(time), out.unbind(time)
    v_if = v_o = None
    if peephole is not None:
        v_if, v_o = peephole[..., :2, :], peephole[..., 2, :]  # (2, H), (H,)
        if _stacked(w_hh_t):  # (P, 1, 2, H), (P, 1, H) against (P, B, 2, H), (P, B, H)
            v_if, v_o = v_if.unsqueeze(1), v_o.unsqueeze(1)
    h, c, c3 = h0, c0, c0.unsqueeze(-2)
    for t in range(steps):
        addmm_(a_steps[t], h, w_hh_t)
        if v_if is not None:
            if_steps[t].addcmul_(v_if, c3)  # V_i * c_{t-1}, V_f * c_{t-1}
        if_steps[t].sigmoid_()
        g_steps[t].tanh_()
        c = torch.mul(f_steps[t], c, out=c_steps[t]).addcmul_(i_steps[t], g_steps[t])
        if v_o is not None:
            o_steps[t].addcmul_(v_o, c)  # V_o * c_t
        o_steps[t].sigmoid_()
        h = torch.mul(o_steps[t], torch.tanh(c, out=tc_steps[t]), out=h_steps[t])
        c3 = c3_steps[t]


def lstm_backward(
    grad_hs: Tensor,
    grad_c: Tensor,
    gates: Tensor,
    c0: Tensor,
    cells: Tensor,
    tanh_cells: Tensor,
    peephole: Tensor | None,
    weight_hh: Tensor,
    grad_pre: Tensor,
    grad_peephole: Tensor,
) -> None:
    """grad_hs (T, B, H): dL/dh_t from above (h_n's gradient added at T-1), used as a buffer;
    grad_c (B, H): dL/dc_{T-1} in, dL/dc0 out; gates (T, B, 4H) = [i, f, g, o]; c0 (B, H);
    cells, tanh_cells (T, B, H); peephole (3, H) or None; weight_hh (4H, H); grad_pre
    (T, B, 4H) <- dL/d[a_i, a_f, a_g, a_o]; grad_peephole (3, H) zeros in, dL/dV out (left as
    it is without peepholes).

    Per step, with dh = dL/dh_t (from above plus grad_pre[t+1] U) and k_o = tanh(c) o (1 - o):
    g_o = dh k_o; dc += dh (o (1 - tanh(c)^2) + k_o V_o); g_i = dc g i (1 - i); g_f = dc
    c_{t-1} f (1 - f); g_g = dc i (1 - g^2); dL/dc_{t-1} = dc f + g_i V_i + g_f V_f.
    """
    lead, hidden, time = grad_hs.shape[:-1], grad_hs.shape[-1], _time_dim(weight_hh)
    steps = grad_hs.shape[time]
    addmm_ = Tensor.baddbmm_ if _stacked(weight_hh) else Tensor.addmm_
    i, f, g, o = gates.split(hidden, dim=-1)
    c_prev = previous_states(c0, cells)  # (T, B, H) c_{t-1}
    k_o = tanh_cells * o * (1.0 - o)
    k_c = o * (1.0 - tanh_cells * tanh_cells)
    k_ifg = torch.stack(  # (T, B, 3, H): the factors of g_i, g_f, g_g on dc
        [g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g)], dim=-2
    )
    k_keep = f  # dL/dc_{t-1} = dc k_keep
    if peephole is not None:
        # V_i, V_f, V_o: (H,) each against (T, B, H); members' (P, 1, 1, H) against (P, T, B, H)
        v_i, v_f, v_o = peephole.unbind(-2)
        if _stacked(weight_hh):
            v_i, v_f, v_o = (v[:, None, None, :] for v in (v_i, v_f, v_o))
        k_c = k_c.addcmul_(k_o, v_o)
        k_keep = f + k_ifg[..., 0, :] * v_i + k_ifg[..., 1, :] * v_f
    g_steps = grad_pre.unbind(time)
    g_o = grad_pre[..., 3 * hidden :].unbind(time)
    g_ifg = grad_pre[..., : 3 * hidden].view(*lead, 3, hidden).unbind(time)
    k_o_t, k_c_t, k_ifg_t, k_keep_t = (k.unbind(time) for k in (k_o, k_c, k_ifg, k_keep))
    grad_h_steps = grad_hs.unbind(time)
    grad_c3 = grad_c.unsqueeze(-2)  # (B, 1, H) view of it, broadcasts against k_ifg
    for t in range(steps - 1, -1, -1):
        grad_h = grad_h_steps[t]
        torch.mul(grad_h, k_o_t[t], out=g_o[t])
        grad_c.addcmul_(grad_h, k_c_t[t])
        torch.mul(grad_c3, k_ifg_t[t], out=g_ifg[t])
        grad_c.mul_(k_keep_t[t])
        if t > 0:
            addmm_(grad_h_steps[t - 1], g_steps[t], weight_hh)
    if peephole is not None:
        gi, gf, _, go = grad_pre.split(hidden, dim=-1)
        grad_peephole[..., 0, :] += (gi * c_prev).sum((-3, -2))
        grad_peephole[..., 1, :] += (gf * c_prev).sum((-3, -2))
        grad_peephole[..., 2, :] += (go * cells).sum((-3, -2))
