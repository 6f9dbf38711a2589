// Per-time-step loops of our hand-written recurrent units, forward and backward through time:
// tanh RNN, the paper's GRU, the reset-after (torch.nn) GRU, and the LSTM with or without
// diagonal peepholes. Everything outside the loops (input projections, the backward's
// elementwise factors, weight-gradient matmuls) stays in Python: see tanh_rnn.py, gru.py,
// lstm.py, which call these functions through gru_repro.models.kernels.
//
// Why hand-written: at the paper's sizes (B = 16, H = 36..400) a step is one small matmul plus
// a few thousand elementwise operations, and the Python loops spend most of their time in
// per-op overhead (~5 us per torch call, several calls per step). No library offers these
// cells' fused BPTT loops on CPU: torch.nn's fused kernels cover neither the paper's GRU
// (reset before the product) nor peepholes, and do not expose their backward loops. Here each
// step is one (or two, paper GRU) ATen matmul into a preallocated buffer plus one fused
// elementwise loop over raw pointers.
//
// Conventions: time-major tensors (T, B, K) whose last dimension is contiguous (views with a
// row stride are fine, e.g. one gate block of a (T, B, G*H) buffer); (B, H) states likewise.
// Gate blocks are stacked along the last dimension in torch.nn's order. Buffers passed in are
// written in place; nothing is allocated per step.

#include <torch/extension.h>

#include <cmath>
#include <optional>
#include <vector>

namespace {

using at::Tensor;

// Row pointers into a (T, B, K) or (B, K) tensor with a contiguous last dimension.
template <typename T>
struct Rows {
  T* data;
  int64_t s0, s1;
  explicit Rows(const Tensor& x) : data(x.data_ptr<T>()), s0(0), s1(0) {
    TORCH_CHECK(x.dim() == 2 || x.dim() == 3, "expected a 2-d or 3-d tensor");
    TORCH_CHECK(x.stride(-1) == 1 || x.size(-1) <= 1, "last dimension must be contiguous");
    s1 = x.stride(-2);
    s0 = x.dim() == 3 ? x.stride(0) : 0;
  }
  T* operator()(int64_t t, int64_t b) const { return data + t * s0 + b * s1; }
  T* operator()(int64_t b) const { return data + b * s1; }
};

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// ---------------------------------------------------------------------------------------------
// tanh RNN, run on s_t = (h_t + 1) / 2 = sigmoid(2 a_t) (see TanhRNNFunction).

// out (T, B, H): 2 (W x_t + b - U 1) in, s_t out; s0 (B, H); w_hh_t (H, H) = U^T.
void tanh_forward(Tensor out, const Tensor& s0, const Tensor& w_hh_t) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "tanh_forward", [&] {
    Rows<scalar_t> s(out);
    Tensor prev = s0;
    for (int64_t t = 0; t < steps; ++t) {
      Tensor cur = out.select(0, t);
      cur.addmm_(prev, w_hh_t, 1, 4);  // 2 a_t = bracket + 4 U s_{t-1}
      for (int64_t b = 0; b < batch; ++b) {
        scalar_t* row = s(t, b);
        for (int64_t j = 0; j < hidden; ++j) row[j] = sigmoid(row[j]);
      }
      prev = cur;
    }
  });
}

// grad_pre (T, B, H): dL/dh_t in, dL/da_t out, the last step already done; dtanh (T, B, H)
// = 1 - h_t^2; weight_hh (H, H).
void tanh_backward(Tensor grad_pre, const Tensor& dtanh, const Tensor& weight_hh) {
  const int64_t steps = grad_pre.size(0), batch = grad_pre.size(1), hidden = grad_pre.size(2);
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "tanh_backward", [&] {
    Rows<scalar_t> g(grad_pre), k(dtanh);
    for (int64_t t = steps - 1; t > 0; --t) {
      grad_pre.select(0, t - 1).addmm_(grad_pre.select(0, t), weight_hh);
      for (int64_t b = 0; b < batch; ++b) {
        scalar_t* gr = g(t - 1, b);
        const scalar_t* kr = k(t - 1, b);
        for (int64_t j = 0; j < hidden; ++j) gr[j] *= kr[j];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The paper's GRU: r, z = sigmoid(.), h~ = tanh(W x + U (r * h) + b), h = lerp(h, h~, z).

// gates (T, B, 3H): input projections in, [r, z, h~] out; h0 (B, H); u_rz_t (H, 2H);
// u_n_t (H, H); reset_h (T, B, H) <- r_t * h_{t-1}; out (T, B, H) <- h_t.
void paper_gru_forward(Tensor gates, const Tensor& h0, const Tensor& u_rz_t,
                       const Tensor& u_n_t, Tensor reset_h, Tensor out) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "paper_gru_forward", [&] {
    Rows<scalar_t> g(gates), rh(reset_h), h(out), first(h0);
    for (int64_t t = 0; t < steps; ++t) {
      Tensor prev = t == 0 ? h0 : out.select(0, t - 1);
      Tensor row = gates.select(0, t);
      row.narrow(1, 0, 2 * hidden).addmm_(prev, u_rz_t);
      for (int64_t b = 0; b < batch; ++b) {
        scalar_t* gr = g(t, b);
        const scalar_t* hp = t == 0 ? first(b) : h(t - 1, b);
        scalar_t* rhr = rh(t, b);
        for (int64_t j = 0; j < 2 * hidden; ++j) gr[j] = sigmoid(gr[j]);
        for (int64_t j = 0; j < hidden; ++j) rhr[j] = gr[j] * hp[j];
      }
      row.narrow(1, 2 * hidden, hidden).addmm_(reset_h.select(0, t), u_n_t);
      for (int64_t b = 0; b < batch; ++b) {
        scalar_t* gr = g(t, b);
        const scalar_t* hp = t == 0 ? first(b) : h(t - 1, b);
        scalar_t* hr = h(t, b);
        for (int64_t j = 0; j < hidden; ++j) {
          const scalar_t cand = std::tanh(gr[2 * hidden + j]);
          gr[2 * hidden + j] = cand;
          hr[j] = hp[j] + gr[hidden + j] * (cand - hp[j]);
        }
      }
    }
  });
}

// grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1} in (overwritten); k_zn (T, B, 2H) =
// [(h~ - h) z (1 - z), z (1 - h~^2)]; k_r (T, B, H) = r (1 - r) h_{t-1}; keep (T, B, H) = 1 - z;
// r (T, B, H); u_rz (2H, H); u_n (H, H); grad_pre (T, B, 3H) <- dL/d[a_r, a_z, a_n].
// Returns dL/dh0 (B, H).
Tensor paper_gru_backward(const Tensor& grad_out, Tensor grad_h, const Tensor& k_zn,
                          const Tensor& k_r, const Tensor& keep, const Tensor& r,
                          const Tensor& u_rz, const Tensor& u_n, Tensor grad_pre) {
  const int64_t steps = grad_out.size(0), batch = grad_out.size(1), hidden = grad_out.size(2);
  Tensor grad_next = at::empty_like(grad_h);
  Tensor grad_rh = at::empty_like(grad_h);  // dL/d(r_t * h_{t-1})
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "paper_gru_backward", [&] {
    Rows<scalar_t> carry(grad_out), kzn(k_zn), kr(k_r), kp(keep), rr(r), gp(grad_pre), grh(grad_rh);
    for (int64_t t = steps - 1; t >= 0; --t) {
      Rows<scalar_t> gh(grad_h), gn(grad_next);
      for (int64_t b = 0; b < batch; ++b) {
        const scalar_t* ghr = gh(b);
        const scalar_t* k = kzn(t, b);
        scalar_t* g = gp(t, b) + hidden;
        for (int64_t j = 0; j < hidden; ++j) {
          g[j] = ghr[j] * k[j];                              // dL/da_z
          g[hidden + j] = ghr[j] * k[hidden + j];            // dL/da_n
        }
      }
      Tensor row = grad_pre.select(0, t);
      at::mm_out(grad_rh, row.narrow(1, 2 * hidden, hidden), u_n);
      for (int64_t b = 0; b < batch; ++b) {
        const scalar_t *ghr = gh(b), *grr = grh(b), *krr = kr(t, b), *kpr = kp(t, b);
        const scalar_t* rrow = rr(t, b);
        const scalar_t* cr = t > 0 ? carry(t - 1, b) : nullptr;
        scalar_t* g = gp(t, b);
        scalar_t* nr = gn(b);
        for (int64_t j = 0; j < hidden; ++j) {
          g[j] = grr[j] * krr[j];
          const scalar_t c = cr ? cr[j] : scalar_t(0);
          nr[j] = c + ghr[j] * kpr[j] + grr[j] * rrow[j];
        }
      }
      grad_next.addmm_(row.narrow(1, 0, 2 * hidden), u_rz);
      std::swap(grad_h, grad_next);
    }
  });
  return grad_h;
}

// ---------------------------------------------------------------------------------------------
// torch.nn's GRU: n = tanh(W_n x + b_in + r * (U_n h + b_hn)), h = lerp(n, h, z).

// gates (T, B, 3H): W x + b_ih in, [r, z, n] out; h0 (B, H); w_hh_t (H, 3H); bias_hh (3H,);
// recur (T, B, 3H) <- U h_{t-1} + b_hh; out (T, B, H) <- h_t.
void reset_after_gru_forward(Tensor gates, const Tensor& h0, const Tensor& w_hh_t,
                             const Tensor& bias_hh, Tensor recur, Tensor out) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "reset_after_gru_forward", [&] {
    Rows<scalar_t> g(gates), rec(recur), h(out), first(h0);
    for (int64_t t = 0; t < steps; ++t) {
      Tensor prev = t == 0 ? h0 : out.select(0, t - 1);
      Tensor rec_t = recur.select(0, t);
      at::addmm_out(rec_t, bias_hh, prev, w_hh_t);
      for (int64_t b = 0; b < batch; ++b) {
        scalar_t* gr = g(t, b);
        const scalar_t* rc = rec(t, b);
        const scalar_t* hp = t == 0 ? first(b) : h(t - 1, b);
        scalar_t* hr = h(t, b);
        for (int64_t j = 0; j < 2 * hidden; ++j) gr[j] = sigmoid(gr[j] + rc[j]);
        for (int64_t j = 0; j < hidden; ++j) {
          const scalar_t n = std::tanh(gr[2 * hidden + j] + gr[j] * rc[2 * hidden + j]);
          gr[2 * hidden + j] = n;
          hr[j] = n + gr[hidden + j] * (hp[j] - n);
        }
      }
    }
  });
}

// grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1} in (overwritten); k_n, k_z (T, B, H);
// k_rn (T, B, 2H) = [(U_n h + b_hn) r (1 - r), r]; z (T, B, H); weight_hh (3H, H);
// grad_recur (T, B, 3H) <- dL/d(U h + b_hh); grad_n (T, B, H) <- dL/d(pre-activation of n).
// Returns dL/dh0 (B, H).
Tensor reset_after_gru_backward(const Tensor& grad_out, Tensor grad_h, const Tensor& k_n,
                                const Tensor& k_z, const Tensor& k_rn, const Tensor& z,
                                const Tensor& weight_hh, Tensor grad_recur, Tensor grad_n) {
  const int64_t steps = grad_out.size(0), batch = grad_out.size(1), hidden = grad_out.size(2);
  Tensor grad_next = at::empty_like(grad_h);
  AT_DISPATCH_FLOATING_TYPES(grad_recur.scalar_type(), "reset_after_gru_backward", [&] {
    Rows<scalar_t> carry(grad_out), kn(k_n), kz(k_z), krn(k_rn), zz(z), gr(grad_recur),
        gnn(grad_n);
    for (int64_t t = steps - 1; t >= 0; --t) {
      Rows<scalar_t> gh(grad_h), gx(grad_next);
      for (int64_t b = 0; b < batch; ++b) {
        const scalar_t *ghr = gh(b), *knr = kn(t, b), *kzr = kz(t, b), *kk = krn(t, b);
        const scalar_t* zr = zz(t, b);
        const scalar_t* cr = t > 0 ? carry(t - 1, b) : nullptr;
        scalar_t *grr = gr(t, b), *gnr = gnn(t, b), *nx = gx(b);
        for (int64_t j = 0; j < hidden; ++j) {
          const scalar_t gn = ghr[j] * knr[j];
          gnr[j] = gn;
          grr[j] = gn * kk[j];
          grr[hidden + j] = ghr[j] * kzr[j];
          grr[2 * hidden + j] = gn * kk[hidden + j];
          const scalar_t c = cr ? cr[j] : scalar_t(0);
          nx[j] = c + ghr[j] * zr[j];
        }
      }
      grad_next.addmm_(grad_recur.select(0, t), weight_hh);
      std::swap(grad_h, grad_next);
    }
  });
  return grad_h;
}

// ---------------------------------------------------------------------------------------------
// LSTM, gates (i, f, g, o), optional diagonal peepholes V_i, V_f (on c_{t-1}) and V_o (on c_t).

// gates (T, B, 4H): input projections in, [i, f, g, o] out; h0, c0 (B, H); w_hh_t (H, 4H);
// peephole (3, H) or None; cells, tanh_cells, out (T, B, H) <- c_t, tanh(c_t), h_t.
void lstm_forward(Tensor gates, const Tensor& h0, const Tensor& c0, const Tensor& w_hh_t,
                  const std::optional<Tensor>& peephole, Tensor cells, Tensor tanh_cells,
                  Tensor out) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const bool peep = peephole.has_value() && peephole->defined();
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    Rows<scalar_t> g(gates), c(cells), tc(tanh_cells), h(out), first_c(c0);
    Tensor v = peep ? peephole->contiguous() : Tensor();
    const scalar_t* vi = peep ? v.data_ptr<scalar_t>() : nullptr;
    for (int64_t t = 0; t < steps; ++t) {
      gates.select(0, t).addmm_(t == 0 ? h0 : out.select(0, t - 1), w_hh_t);
      for (int64_t b = 0; b < batch; ++b) {
        scalar_t* a = g(t, b);
        const scalar_t* cp = t == 0 ? first_c(b) : c(t - 1, b);
        scalar_t *cr = c(t, b), *tcr = tc(t, b), *hr = h(t, b);
        scalar_t *ai = a, *af = a + hidden, *ag = a + 2 * hidden, *ao = a + 3 * hidden;
        for (int64_t j = 0; j < hidden; ++j) {
          scalar_t pi = ai[j], pf = af[j];
          if (peep) {
            pi += vi[j] * cp[j];
            pf += vi[hidden + j] * cp[j];
          }
          const scalar_t i = sigmoid(pi), f = sigmoid(pf), gg = std::tanh(ag[j]);
          const scalar_t cn = f * cp[j] + i * gg;
          const scalar_t o = sigmoid(peep ? ao[j] + vi[2 * hidden + j] * cn : ao[j]);
          const scalar_t tcn = std::tanh(cn);
          ai[j] = i;
          af[j] = f;
          ag[j] = gg;
          ao[j] = o;
          cr[j] = cn;
          tcr[j] = tcn;
          hr[j] = o * tcn;
        }
      }
    }
  });
}

// grad_hs (T, B, H): dL/dh_t from above in, completed in place; grad_c (B, H): dL/dc_{T-1} in,
// dL/dc0 out; k_o, k_c (T, B, H); k_ifg (T, B, 3H); k_keep (T, B, H); weight_hh (4H, H);
// grad_pre (T, B, 4H) <- dL/d[a_i, a_f, a_g, a_o]. See LSTMFunction.backward for the factors.
void lstm_backward(Tensor grad_hs, Tensor grad_c, const Tensor& k_o, const Tensor& k_c,
                   const Tensor& k_ifg, const Tensor& k_keep, const Tensor& weight_hh,
                   Tensor grad_pre) {
  const int64_t steps = grad_hs.size(0), batch = grad_hs.size(1), hidden = grad_hs.size(2);
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "lstm_backward", [&] {
    Rows<scalar_t> gh(grad_hs), gc(grad_c), ko(k_o), kc(k_c), kifg(k_ifg), kk(k_keep),
        gp(grad_pre);
    for (int64_t t = steps - 1; t >= 0; --t) {
      for (int64_t b = 0; b < batch; ++b) {
        const scalar_t *ghr = gh(t, b), *kor = ko(t, b), *kcr = kc(t, b), *kf = kifg(t, b);
        const scalar_t* kkr = kk(t, b);
        scalar_t *gcr = gc(b), *g = gp(t, b);
        for (int64_t j = 0; j < hidden; ++j) {
          g[3 * hidden + j] = ghr[j] * kor[j];
          const scalar_t dc = gcr[j] + ghr[j] * kcr[j];
          g[j] = dc * kf[j];
          g[hidden + j] = dc * kf[hidden + j];
          g[2 * hidden + j] = dc * kf[2 * hidden + j];
          gcr[j] = dc * kkr[j];
        }
      }
      if (t > 0) grad_hs.select(0, t - 1).addmm_(grad_pre.select(0, t), weight_hh);
    }
  });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Per-time-step loops of gru_repro's recurrent units (see loops.cpp)";
  m.def("tanh_forward", &tanh_forward);
  m.def("tanh_backward", &tanh_backward);
  m.def("paper_gru_forward", &paper_gru_forward);
  m.def("paper_gru_backward", &paper_gru_backward);
  m.def("reset_after_gru_forward", &reset_after_gru_forward);
  m.def("reset_after_gru_backward", &reset_after_gru_backward);
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
}
