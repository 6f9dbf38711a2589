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
// step is one ATen matmul (two for the paper's GRU) into a preallocated buffer plus one fused
// elementwise pass over raw pointers.
//
// Conventions: time-major tensors (T, B, K) whose last dimension is contiguous (views with a
// row stride are fine, e.g. one gate block of a (T, B, G*H) buffer); (B, H) states likewise.
// Gate blocks are stacked along the last dimension in torch.nn's order. Buffers passed in are
// written in place. The elementwise passes are compiled for three instruction sets (AVX-512,
// AVX2, baseline x86-64) and the best one the CPU has is picked at load time (GCC's
// target_clones), so the build stays portable (no -march=native). Floating-point contraction
// stays off (ISO C++ mode), so every variant rounds alike.

#include <torch/extension.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

namespace {

using at::Tensor;

// exp, sigmoid and tanh. float32 (training) uses a branch-free exp that the compiler can
// vectorize (std::exp calls cannot be, without -ffast-math): round x / ln 2 to n with the
// 1.5 * 2^23 trick, a degree-7 Taylor polynomial on the remainder |r| <= ln(2) / 2 (truncation
// error < 1e-8 relative), times 2^n built in the exponent bits; about 1 ulp. float64 (tests,
// gradcheck) uses the C library.
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;  // keeps 2^n a normal float; NaN passes through
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float y = x * 1.44269504088896341f + shifter;
  const float n = y - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;  // ln 2 in 2 parts
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &y, sizeof bits);  // the low mantissa bits of y hold n
  bits = (bits - 0x4B400000 + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double fast_exp(double x) { return std::exp(x); }

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + fast_exp(-x));
}
// float32: 1 - 2 / (e^{2x} + 1), absolute error ~1e-7 (like the sigmoid form of the tanh RNN's
// Python loop); float64: std::tanh.
inline float tanh_(float x) { return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f); }
inline double tanh_(double x) { return std::tanh(x); }

// Row pointers into a (T, B, K) or (B, K) tensor with a contiguous last dimension.
template <typename T>
struct Rows {
  T* data;
  int64_t s0 = 0, s1 = 0;
  explicit Rows(const Tensor& x) : data(x.data_ptr<T>()) {
    TORCH_CHECK(x.dim() == 2 || x.dim() == 3, "expected a 2-d or 3-d tensor");
    TORCH_CHECK(x.stride(-1) == 1 || x.size(-1) <= 1, "last dimension must be contiguous");
    s1 = x.stride(-2);
    s0 = x.dim() == 3 ? x.stride(0) : 0;
  }
  T* at(int64_t t) const { return data + t * s0; }  // row 0 of step t
};

// ---------------------------------------------------------------------------------------------
// Elementwise passes over one step: B rows (row strides s*), H columns, no aliasing between
// distinct pointer arguments.

// tanh RNN on s = sigmoid(2 a): x <- sigmoid(x).
template <typename T>
SIMD_CLONES void sigmoid_rows(T* __restrict__ x, int64_t sx, int64_t batch, int64_t n) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < n; ++j) x[b * sx + j] = sigmoid(x[b * sx + j]);
}

// g <- g * k (backward of the tanh RNN).
template <typename T>
SIMD_CLONES void mul_rows(T* __restrict__ g, int64_t sg, const T* __restrict__ k, int64_t sk,
                          int64_t batch, int64_t n) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < n; ++j) g[b * sg + j] *= k[b * sk + j];
}

// Paper GRU, first half: gates row [r, z, .] <- sigmoid; rh <- r * h_prev.
template <typename T>
SIMD_CLONES void paper_gru_gates(T* __restrict__ g, int64_t sg, const T* __restrict__ hp,
                                 int64_t shp, T* __restrict__ rh, int64_t srh, int64_t batch,
                                 int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b) {
    T* r = g + b * sg;
    T* z = r + hidden;
    for (int64_t j = 0; j < hidden; ++j) {
      const T rj = sigmoid(r[j]);
      r[j] = rj;
      z[j] = sigmoid(z[j]);
      rh[b * srh + j] = rj * hp[b * shp + j];
    }
  }
}

// Paper GRU, second half: h~ <- tanh(h~ pre-activation); h = h_prev + z (h~ - h_prev).
template <typename T>
SIMD_CLONES void paper_gru_state(T* __restrict__ g, int64_t sg, const T* __restrict__ hp,
                                 int64_t shp, T* __restrict__ h, int64_t sh, int64_t batch,
                                 int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b) {
    const T* z = g + b * sg + hidden;
    T* cand = g + b * sg + 2 * hidden;
    for (int64_t j = 0; j < hidden; ++j) {
      const T c = tanh_(cand[j]);
      const T p = hp[b * shp + j];
      cand[j] = c;
      h[b * sh + j] = p + z[j] * (c - p);
    }
  }
}

// Paper GRU backward, first half: [g_z, g_n] = dh * k_zn.
template <typename T>
SIMD_CLONES void paper_gru_grad_zn(const T* __restrict__ dh, int64_t sdh, const T* __restrict__ k,
                                   int64_t sk, T* __restrict__ gp, int64_t sgp, int64_t batch,
                                   int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const T d = dh[b * sdh + j];
      gp[b * sgp + hidden + j] = d * k[b * sk + j];
      gp[b * sgp + 2 * hidden + j] = d * k[b * sk + hidden + j];
    }
}

// Paper GRU backward, second half: g_r = d(rh) * k_r; next = carry + dh * keep + d(rh) * r.
template <typename T>
SIMD_CLONES void paper_gru_grad_r(const T* __restrict__ dh, const T* __restrict__ drh,
                                  const T* __restrict__ kr, const T* __restrict__ keep,
                                  const T* __restrict__ r, int64_t sr, const T* __restrict__ carry,
                                  T* __restrict__ gp, int64_t sgp, T* __restrict__ next,
                                  int64_t batch, int64_t hidden) {
  // dh, drh, kr, keep, carry, next: (B, H) contiguous rows of stride hidden.
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t i = b * hidden + j;
      gp[b * sgp + j] = drh[i] * kr[i];
      const T c = carry ? carry[i] : T(0);
      next[i] = (c + dh[i] * keep[i]) + drh[i] * r[b * sr + j];
    }
}

// Reset-after GRU: r, z = sigmoid(g + rec); n = tanh(g_n + r * rec_n); h = n + z (h_prev - n).
template <typename T>
SIMD_CLONES void reset_after_gru_cell(T* __restrict__ g, int64_t sg, const T* __restrict__ rec,
                                      int64_t srec, const T* __restrict__ hp, int64_t shp,
                                      T* __restrict__ h, int64_t sh, int64_t batch,
                                      int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b) {
    T* gr = g + b * sg;
    const T* rc = rec + b * srec;
    for (int64_t j = 0; j < hidden; ++j) {
      const T r = sigmoid(gr[j] + rc[j]);
      const T z = sigmoid(gr[hidden + j] + rc[hidden + j]);
      const T n = tanh_(gr[2 * hidden + j] + r * rc[2 * hidden + j]);
      const T p = hp[b * shp + j];
      gr[j] = r;
      gr[hidden + j] = z;
      gr[2 * hidden + j] = n;
      h[b * sh + j] = n + z * (p - n);
    }
  }
}

// Reset-after GRU backward: g_n = dh k_n; grad_recur = [g_n k_r, dh k_z, g_n r];
// next = carry + dh z. dh, carry, next, k_n, k_z, g_n: (B, H) rows of stride hidden.
template <typename T>
SIMD_CLONES void reset_after_gru_grad(const T* __restrict__ dh, const T* __restrict__ kn,
                                      const T* __restrict__ kz, const T* __restrict__ krn,
                                      const T* __restrict__ z, int64_t sz,
                                      const T* __restrict__ carry, T* __restrict__ grec,
                                      T* __restrict__ gn, T* __restrict__ next, int64_t batch,
                                      int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t i = b * hidden + j, i2 = 2 * b * hidden + j, i3 = 3 * b * hidden + j;
      const T d = dh[i], n = d * kn[i];
      gn[i] = n;
      grec[i3] = n * krn[i2];
      grec[i3 + hidden] = d * kz[i];
      grec[i3 + 2 * hidden] = n * krn[i2 + hidden];
      const T c = carry ? carry[i] : T(0);
      next[i] = c + d * z[b * sz + j];
    }
}

// LSTM cell: gates row [i, f, g, o] pre-activations (recurrent term included) -> activations;
// c, tanh(c), h written. v = peepholes (3, H) or nullptr.
template <typename T, bool Peep>
SIMD_CLONES void lstm_cell(T* __restrict__ a, int64_t sa, const T* __restrict__ cp, int64_t scp,
                           T* __restrict__ c, T* __restrict__ tc, T* __restrict__ h,
                           const T* __restrict__ v, int64_t batch, int64_t hidden) {
  // c, tc, h: (B, H) rows of stride hidden.
  for (int64_t b = 0; b < batch; ++b) {
    T* ar = a + b * sa;
    for (int64_t j = 0; j < hidden; ++j) {
      const T cpj = cp[b * scp + j];
      T pi = ar[j], pf = ar[hidden + j], po = ar[3 * hidden + j];
      if (Peep) {
        pi += v[j] * cpj;
        pf += v[hidden + j] * cpj;
      }
      const T i = sigmoid(pi), f = sigmoid(pf), g = tanh_(ar[2 * hidden + j]);
      const T cn = f * cpj + i * g;
      if (Peep) po += v[2 * hidden + j] * cn;
      const T o = sigmoid(po), tcn = tanh_(cn);
      ar[j] = i;
      ar[hidden + j] = f;
      ar[2 * hidden + j] = g;
      ar[3 * hidden + j] = o;
      c[b * hidden + j] = cn;
      tc[b * hidden + j] = tcn;
      h[b * hidden + j] = o * tcn;
    }
  }
}

// LSTM backward: g_o = dh k_o; dc += dh k_c; [g_i, g_f, g_g] = dc k_ifg; dc *= k_keep.
// dh, dc, k_o, k_c: (B, H) rows of stride hidden; k_ifg rows of 3H; k_keep rows of skk.
template <typename T>
SIMD_CLONES void lstm_grad(const T* __restrict__ dh, T* __restrict__ dc, const T* __restrict__ ko,
                           const T* __restrict__ kc, const T* __restrict__ kifg,
                           const T* __restrict__ kk, int64_t skk, T* __restrict__ gp,
                           int64_t batch, int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t i = b * hidden + j, i3 = 3 * b * hidden + j, i4 = 4 * b * hidden + j;
      const T d = dh[i];
      gp[i4 + 3 * hidden] = d * ko[i];
      const T dcn = dc[i] + d * kc[i];
      gp[i4] = dcn * kifg[i3];
      gp[i4 + hidden] = dcn * kifg[i3 + hidden];
      gp[i4 + 2 * hidden] = dcn * kifg[i3 + 2 * hidden];
      dc[i] = dcn * kk[b * skk + j];
    }
}

void check_contiguous(std::initializer_list<const Tensor*> xs, const char* what) {
  for (const Tensor* x : xs) TORCH_CHECK(x->is_contiguous(), what, " must be contiguous");
}

// ---------------------------------------------------------------------------------------------
// The loops over time, called from Python.

// tanh RNN on s_t = (h_t + 1) / 2 = sigmoid(2 a_t), see TanhRNNFunction.
// out (T, B, H): 2 (W x_t + b - U 1) in, s_t out; s0 (B, H); w_hh_t (H, H) = U^T.
void tanh_forward(Tensor out, const Tensor& s0, const Tensor& w_hh_t) {
  check_contiguous({&out}, "out");
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "tanh_forward", [&] {
    Rows<scalar_t> s(out);
    Tensor prev = s0;
    for (int64_t t = 0; t < steps; ++t) {
      Tensor cur = out.select(0, t);
      cur.addmm_(prev, w_hh_t, 1, 4);  // 2 a_t = bracket + 4 U s_{t-1}
      sigmoid_rows(s.at(t), s.s1, batch, hidden);
      prev = cur;
    }
  });
}

// grad_pre (T, B, H): dL/dh_t in, dL/da_t out, the last step already done; dtanh (T, B, H)
// = 1 - h_t^2; weight_hh (H, H).
void tanh_backward(Tensor grad_pre, const Tensor& dtanh, const Tensor& weight_hh) {
  check_contiguous({&grad_pre}, "grad_pre");
  const int64_t steps = grad_pre.size(0), batch = grad_pre.size(1), hidden = grad_pre.size(2);
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "tanh_backward", [&] {
    Rows<scalar_t> g(grad_pre), k(dtanh);
    for (int64_t t = steps - 1; t > 0; --t) {
      grad_pre.select(0, t - 1).addmm_(grad_pre.select(0, t), weight_hh);
      mul_rows(g.at(t - 1), g.s1, k.at(t - 1), k.s1, batch, hidden);
    }
  });
}

// The paper's GRU: r, z = sigmoid(.), h~ = tanh(W x + U (r * h) + b), h = lerp(h, h~, z).
// gates (T, B, 3H): input projections in, [r, z, h~] out; h0 (B, H); u_rz_t (H, 2H);
// u_n_t (H, H); reset_h (T, B, H) <- r_t * h_{t-1}; out (T, B, H) <- h_t.
void paper_gru_forward(Tensor gates, const Tensor& h0, const Tensor& u_rz_t,
                       const Tensor& u_n_t, Tensor reset_h, Tensor out) {
  check_contiguous({&gates, &reset_h, &out}, "buffers");
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "paper_gru_forward", [&] {
    Rows<scalar_t> g(gates), rh(reset_h), h(out), first(h0);
    for (int64_t t = 0; t < steps; ++t) {
      Tensor row = gates.select(0, t);
      const scalar_t* hp = t == 0 ? first.data : h.at(t - 1);
      const int64_t shp = t == 0 ? first.s1 : h.s1;
      row.narrow(1, 0, 2 * hidden).addmm_(t == 0 ? h0 : out.select(0, t - 1), u_rz_t);
      paper_gru_gates(g.at(t), g.s1, hp, shp, rh.at(t), rh.s1, batch, hidden);
      row.narrow(1, 2 * hidden, hidden).addmm_(reset_h.select(0, t), u_n_t);
      paper_gru_state(g.at(t), g.s1, hp, shp, h.at(t), h.s1, batch, hidden);
    }
  });
}

// grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1}, used as a buffer; k_zn (T, B, 2H) =
// [(h~ - h) z (1 - z), z (1 - h~^2)]; k_r (T, B, H) = r (1 - r) h_{t-1}; keep (T, B, H) = 1 - z;
// r (T, B, H); u_rz (2H, H); u_n (H, H); grad_pre (T, B, 3H) <- dL/d[a_r, a_z, a_n].
// Returns dL/dh0 (B, H).
Tensor paper_gru_backward(const Tensor& grad_out, Tensor grad_h, const Tensor& k_zn,
                          const Tensor& k_r, const Tensor& keep, const Tensor& r,
                          const Tensor& u_rz, const Tensor& u_n, Tensor grad_pre) {
  check_contiguous({&grad_out, &grad_h, &k_zn, &k_r, &keep, &grad_pre}, "paper_gru_backward operands");
  const int64_t steps = grad_out.size(0), batch = grad_out.size(1), hidden = grad_out.size(2);
  Tensor grad_next = at::empty_like(grad_h);
  Tensor grad_rh = at::empty_like(grad_h);  // dL/d(r_t * h_{t-1})
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "paper_gru_backward", [&] {
    Rows<scalar_t> carry(grad_out), kzn(k_zn), kr(k_r), kp(keep), rr(r), gp(grad_pre);
    const scalar_t* drh = grad_rh.data_ptr<scalar_t>();
    for (int64_t t = steps - 1; t >= 0; --t) {
      const scalar_t* dh = grad_h.data_ptr<scalar_t>();
      paper_gru_grad_zn(dh, hidden, kzn.at(t), kzn.s1, gp.at(t), gp.s1, batch, hidden);
      Tensor row = grad_pre.select(0, t);
      at::mm_out(grad_rh, row.narrow(1, 2 * hidden, hidden), u_n);
      paper_gru_grad_r(dh, drh, kr.at(t), kp.at(t), rr.at(t), rr.s1,
                       t > 0 ? carry.at(t - 1) : static_cast<const scalar_t*>(nullptr), gp.at(t),
                       gp.s1, grad_next.data_ptr<scalar_t>(), batch, hidden);
      grad_next.addmm_(row.narrow(1, 0, 2 * hidden), u_rz);
      std::swap(grad_h, grad_next);
    }
  });
  return grad_h;
}

// torch.nn's GRU: n = tanh(W_n x + b_in + r * (U_n h + b_hn)), h = lerp(n, h, z).
// gates (T, B, 3H): W x + b_ih in, [r, z, n] out; h0 (B, H); w_hh_t (H, 3H); bias_hh (3H,);
// recur (T, B, 3H) <- U h_{t-1} + b_hh; out (T, B, H) <- h_t.
void reset_after_gru_forward(Tensor gates, const Tensor& h0, const Tensor& w_hh_t,
                             const Tensor& bias_hh, Tensor recur, Tensor out) {
  check_contiguous({&gates, &recur, &out}, "buffers");
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "reset_after_gru_forward", [&] {
    Rows<scalar_t> g(gates), rec(recur), h(out), first(h0);
    for (int64_t t = 0; t < steps; ++t) {
      Tensor rec_t = recur.select(0, t);
      at::addmm_out(rec_t, bias_hh, t == 0 ? h0 : out.select(0, t - 1), w_hh_t);
      reset_after_gru_cell(g.at(t), g.s1, rec.at(t), rec.s1, t == 0 ? first.data : h.at(t - 1),
                           t == 0 ? first.s1 : h.s1, h.at(t), h.s1, batch, hidden);
    }
  });
}

// grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1}, used as a buffer; k_n, k_z (T, B, H);
// k_rn (T, B, 2H) = [(U_n h + b_hn) r (1 - r), r]; z (T, B, H); weight_hh (3H, H);
// grad_recur (T, B, 3H) <- dL/d(U h + b_hh); grad_n (T, B, H) <- dL/d(pre-activation of n).
// Returns dL/dh0 (B, H).
Tensor reset_after_gru_backward(const Tensor& grad_out, Tensor grad_h, const Tensor& k_n,
                                const Tensor& k_z, const Tensor& k_rn, const Tensor& z,
                                const Tensor& weight_hh, Tensor grad_recur, Tensor grad_n) {
  check_contiguous({&grad_out, &grad_h, &k_n, &k_z, &k_rn, &grad_recur, &grad_n}, "reset_after_gru_backward operands");
  const int64_t steps = grad_out.size(0), batch = grad_out.size(1), hidden = grad_out.size(2);
  Tensor grad_next = at::empty_like(grad_h);
  AT_DISPATCH_FLOATING_TYPES(grad_recur.scalar_type(), "reset_after_gru_backward", [&] {
    Rows<scalar_t> carry(grad_out), kn(k_n), kz(k_z), krn(k_rn), zz(z), gr(grad_recur),
        gn(grad_n);
    for (int64_t t = steps - 1; t >= 0; --t) {
      reset_after_gru_grad(grad_h.data_ptr<scalar_t>(), kn.at(t), kz.at(t), krn.at(t), zz.at(t),
                           zz.s1, t > 0 ? carry.at(t - 1) : static_cast<const scalar_t*>(nullptr),
                           gr.at(t), gn.at(t), grad_next.data_ptr<scalar_t>(), batch, hidden);
      grad_next.addmm_(grad_recur.select(0, t), weight_hh);
      std::swap(grad_h, grad_next);
    }
  });
  return grad_h;
}

// LSTM, gates (i, f, g, o), optional diagonal peepholes V_i, V_f (on c_{t-1}), V_o (on c_t).
// gates (T, B, 4H): input projections in, [i, f, g, o] out; h0, c0 (B, H); w_hh_t (H, 4H);
// peephole (3, H) or None; cells, tanh_cells, out (T, B, H) <- c_t, tanh(c_t), h_t.
void lstm_forward(Tensor gates, const Tensor& h0, const Tensor& c0, const Tensor& w_hh_t,
                  const std::optional<Tensor>& peephole, Tensor cells, Tensor tanh_cells,
                  Tensor out) {
  check_contiguous({&gates, &cells, &tanh_cells, &out}, "buffers");
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const bool peep = peephole.has_value() && peephole->defined();
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    Rows<scalar_t> g(gates), c(cells), tc(tanh_cells), h(out), first_c(c0);
    const Tensor v = peep ? peephole->contiguous() : Tensor();
    for (int64_t t = 0; t < steps; ++t) {
      gates.select(0, t).addmm_(t == 0 ? h0 : out.select(0, t - 1), w_hh_t);
      const scalar_t* cp = t == 0 ? first_c.data : c.at(t - 1);
      const int64_t scp = t == 0 ? first_c.s1 : c.s1;
      if (peep)
        lstm_cell<scalar_t, true>(g.at(t), g.s1, cp, scp, c.at(t), tc.at(t), h.at(t),
                                  v.data_ptr<scalar_t>(), batch, hidden);
      else
        lstm_cell<scalar_t, false>(g.at(t), g.s1, cp, scp, c.at(t), tc.at(t), h.at(t), nullptr,
                                   batch, hidden);
    }
  });
}

// grad_hs (T, B, H): dL/dh_t from above in, completed in place; grad_c (B, H): dL/dc_{T-1} in,
// dL/dc0 out; k_o, k_c (T, B, H); k_ifg (T, B, 3H); k_keep (T, B, H); weight_hh (4H, H);
// grad_pre (T, B, 4H) <- dL/d[a_i, a_f, a_g, a_o]. See LSTMFunction.backward for the factors.
void lstm_backward(Tensor grad_hs, Tensor grad_c, const Tensor& k_o, const Tensor& k_c,
                   const Tensor& k_ifg, const Tensor& k_keep, const Tensor& weight_hh,
                   Tensor grad_pre) {
  check_contiguous({&grad_hs, &grad_c, &k_o, &k_c, &k_ifg, &grad_pre}, "lstm_backward operands");
  const int64_t steps = grad_hs.size(0), batch = grad_hs.size(1), hidden = grad_hs.size(2);
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "lstm_backward", [&] {
    Rows<scalar_t> gh(grad_hs), ko(k_o), kc(k_c), kifg(k_ifg), kk(k_keep), gp(grad_pre);
    scalar_t* dc = grad_c.data_ptr<scalar_t>();
    for (int64_t t = steps - 1; t >= 0; --t) {
      lstm_grad(gh.at(t), dc, ko.at(t), kc.at(t), kifg.at(t), kk.at(t), kk.s1, gp.at(t), batch,
                hidden);
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
