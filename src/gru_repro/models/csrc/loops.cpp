// Per-time-step loops of our hand-written recurrent units, forward and backward through time:
// tanh RNN, the paper's GRU, the reset-after (torch.nn) GRU, and the LSTM with or without
// diagonal peepholes. Everything outside the loops (input projections, weight-gradient matmuls)
// stays in Python: see tanh_rnn.py, gru.py, lstm.py, which call these functions through
// gru_repro.models.kernels. models/loops_python.py is the Python backend of the same contract:
// the same functions, argument names and order (the bindings below name every argument). The
// backward loops here compute the elementwise factors (sigmoid and tanh derivatives) on the fly
// from the saved activations, one pass over memory per step; the Python ones compute them in
// whole-sequence passes before their loop, which is what costs least there (per-op overhead).
//
// Why hand-written: at the paper's sizes (B = 16, H = 36..400) a step is one small matmul plus
// a few thousand elementwise operations, and the Python loops spend most of their time in
// per-op overhead (~5 us per torch call, several calls per step). No library offers these
// cells' fused BPTT loops on CPU: torch.nn's fused kernels cover neither the paper's GRU
// (reset before the product) nor peepholes, and do not expose their backward loops. Here each
// step is one recurrent product (two for the paper's GRU, see recurrent_matmul.h: a packed
// AVX-512 kernel where it applies, else ATen's matmul) into a preallocated buffer plus one
// fused elementwise pass over raw pointers.
//
// A population's member layout (models/population_fused.py): stacked weights (P, K, N), and
// every tensor with a leading member dimension; see "Member layout" below.
//
// Conventions: time-major tensors (T, B, K) whose last dimension is contiguous (views with a
// row stride are fine, e.g. one gate block of a (T, B, G*H) buffer); (B, H) states likewise.
// Gate blocks are stacked along the last dimension in torch.nn's order. Buffers passed in are
// written in place. The elementwise passes are compiled for three instruction sets (AVX-512,
// AVX2, baseline x86-64) and the best one the CPU has is picked at load time (GCC's
// target_clones), so the build stays portable (no -march=native). GCC contracts a * b + c into
// fused multiply-adds in the AVX2 and AVX-512 variants (its C++ modes default to
// -ffp-contract=fast; only its ISO C modes turn it off), so those variants round differently
// from the baseline one: a run's numbers repeat bit for bit on CPUs that pick the same variant.

#include <torch/extension.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <vector>

#include "recurrent_matmul.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

namespace {

using at::Tensor;
using recurrent_matmul::RightOperand;

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
// float32: 1 - 2 / (e^{2x} + 1), absolute error ~1e-7, as cheap as sigmoid (so the tanh RNN
// runs on h directly; torch's tanh costs several sigmoids, which is why the Python loop of
// larger batches runs on sigmoid(2 a) instead); float64: std::tanh.
inline float tanh_(float x) { return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f); }
inline double tanh_(double x) { return std::tanh(x); }

// Row pointers into a (T, B, K) or (B, K) tensor with a contiguous last dimension; with
// `members`, a population's (P, T, B, K) or (P, B, K): member p's rows start at p * sm.
template <typename T>
struct Rows {
  T* data;
  int64_t sm = 0, s0 = 0, s1 = 0;
  explicit Rows(const Tensor& x, bool members = false) : data(x.data_ptr<T>()) {
    TORCH_CHECK(x.device().is_cpu(), "the C++ loops run on CPU tensors only");
    const int64_t dims = x.dim() - (members ? 1 : 0);
    TORCH_CHECK(dims == 2 || dims == 3,
                members ? "expected a 3-d or 4-d tensor (members first)"
                        : "expected a 2-d or 3-d tensor");
    TORCH_CHECK(x.stride(-1) == 1 || x.size(-1) <= 1, "last dimension must be contiguous");
    s1 = x.stride(-2);
    s0 = dims == 3 ? x.stride(-3) : 0;
    sm = members ? x.stride(0) : 0;
  }
  T* at(int64_t t, int64_t p = 0) const { return data + p * sm + t * s0; }  // row 0 of step t
};

// The recurrent weights of one run (K, N), or of a population's P members (P, K, N): one
// RightOperand per member, each packed once per call as a single run's is.
class MemberOperands {
 public:
  explicit MemberOperands(const Tensor& w) {
    TORCH_CHECK(w.dim() == 2 || w.dim() == 3, "recurrent weights must be (K, N) or (P, K, N)");
    if (w.dim() == 2) {
      ops_.emplace_back(w);
    } else {
      ops_.reserve(w.size(0));
      for (int64_t p = 0; p < w.size(0); ++p) ops_.emplace_back(w.select(0, p));
    }
  }
  const RightOperand& operator[](int64_t p) const { return ops_[p]; }

 private:
  std::vector<RightOperand> ops_;
};

// Members of the population a loop runs (1 for a single run) and whether its tensors have the
// leading member dimension: weights (P, K, N) say so.
struct Members {
  int64_t count = 1;
  bool stacked = false;
  explicit Members(const Tensor& weight) {
    stacked = weight.dim() == 3;
    count = stacked ? weight.size(0) : 1;
  }
  // Member p's slice of a (B, H) state, or of a population's (P, B, H).
  template <typename T>
  T* of(const Tensor& x, int64_t p) const {
    return x.data_ptr<T>() + (stacked ? p * x.stride(0) : 0);
  }
};

// ---------------------------------------------------------------------------------------------
// Elementwise passes over one step: B rows (row strides s*), H columns, no aliasing between
// distinct pointer arguments.

// tanh RNN: x <- tanh(x).
template <typename T>
SIMD_CLONES void tanh_rows(T* __restrict__ x, int64_t sx, int64_t batch, int64_t n) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < n; ++j) x[b * sx + j] = tanh_(x[b * sx + j]);
}

// tanh RNN backward: g <- g * (1 - h^2), g and h (B, H) rows of stride hidden.
template <typename T>
SIMD_CLONES void tanh_grad(T* __restrict__ g, const T* __restrict__ h, int64_t batch,
                           int64_t hidden) {
  for (int64_t i = 0; i < batch * hidden; ++i) g[i] *= T(1) - h[i] * h[i];
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

// Paper GRU backward, first half: g_z = dh (h~ - h_prev) z (1 - z), g_n = dh z (1 - h~^2).
// gates rows [r, z, h~] and grad_pre rows (3H); dh, hp (B, H) rows of stride hidden.
template <typename T>
SIMD_CLONES void paper_gru_grad_zn(const T* __restrict__ g, const T* __restrict__ hp,
                                   const T* __restrict__ dh, T* __restrict__ gp, int64_t batch,
                                   int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t i = b * hidden + j, i3 = 3 * b * hidden + j;
      const T z = g[i3 + hidden], c = g[i3 + 2 * hidden], d = dh[i];
      gp[i3 + hidden] = d * ((c - hp[i]) * z * (T(1) - z));
      gp[i3 + 2 * hidden] = d * (z * (T(1) - c * c));
    }
}

// Paper GRU backward, second half, with drh = dL/d(r * h_prev):
// g_r = drh r (1 - r) h_prev; next = carry + dh (1 - z) + drh r (carry may be nullptr).
template <typename T>
SIMD_CLONES void paper_gru_grad_r(const T* __restrict__ g, const T* __restrict__ hp,
                                  const T* __restrict__ dh, const T* __restrict__ drh,
                                  const T* __restrict__ carry, T* __restrict__ gp,
                                  T* __restrict__ next, int64_t batch, int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t i = b * hidden + j, i3 = 3 * b * hidden + j;
      const T r = g[i3], z = g[i3 + hidden];
      gp[i3] = drh[i] * (r * (T(1) - r) * hp[i]);
      const T c = carry ? carry[i] : T(0);
      next[i] = (c + dh[i] * (T(1) - z)) + drh[i] * r;
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

// Reset-after GRU backward: g_n = dh (1 - z) (1 - n^2); grad_recur = [g_n rec_n r (1 - r),
// dh (h_prev - n) z (1 - z), g_n r]; next = carry + dh z (carry may be nullptr).
// gates, recur, grad_recur rows of 3H; dh, hp, carry, next, grad_n rows of H.
template <typename T>
SIMD_CLONES void reset_after_gru_grad(const T* __restrict__ g, const T* __restrict__ rec,
                                      const T* __restrict__ hp, const T* __restrict__ dh,
                                      const T* __restrict__ carry, T* __restrict__ grec,
                                      T* __restrict__ gn, T* __restrict__ next, int64_t batch,
                                      int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t i = b * hidden + j, i3 = 3 * b * hidden + j;
      const T r = g[i3], z = g[i3 + hidden], n = g[i3 + 2 * hidden], d = dh[i];
      const T dn = d * ((T(1) - z) * (T(1) - n * n));
      gn[i] = dn;
      grec[i3] = dn * (rec[i3 + 2 * hidden] * r * (T(1) - r));
      grec[i3 + hidden] = d * ((hp[i] - n) * z * (T(1) - z));
      grec[i3 + 2 * hidden] = dn * r;
      const T c = carry ? carry[i] : T(0);
      next[i] = c + d * z;
    }
}

// LSTM cell: gates row [i, f, g, o] input pre-activations plus rec (the recurrent term U h,
// rows of 4H) -> activations; c, tanh(c), h written. v = peepholes (3, H) or nullptr.
template <typename T, bool Peep>
SIMD_CLONES void lstm_cell(T* __restrict__ a, int64_t sa, const T* __restrict__ rec,
                           const T* __restrict__ cp, int64_t scp, T* __restrict__ c,
                           T* __restrict__ tc, T* __restrict__ h, const T* __restrict__ v,
                           int64_t batch, int64_t hidden) {
  // c, tc, h: (B, H) rows of stride hidden.
  for (int64_t b = 0; b < batch; ++b) {
    T* ar = a + b * sa;
    const T* rr = rec + 4 * b * hidden;
    for (int64_t j = 0; j < hidden; ++j) {
      const T cpj = cp[b * scp + j];
      T pi = ar[j] + rr[j], pf = ar[hidden + j] + rr[hidden + j];
      T po = ar[3 * hidden + j] + rr[3 * hidden + j];
      if (Peep) {
        pi += v[j] * cpj;
        pf += v[hidden + j] * cpj;
      }
      const T i = sigmoid(pi), f = sigmoid(pf);
      const T g = tanh_(ar[2 * hidden + j] + rr[2 * hidden + j]);
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

// LSTM backward, one step: with k_o = tanh(c) o (1 - o) and (peepholes V_i, V_f, V_o)
//   g_o = dh k_o;  dc += dh (o (1 - tanh(c)^2) + k_o V_o);
//   g_i = dc g i (1 - i);  g_f = dc c_prev f (1 - f);  g_g = dc i (1 - g^2);
//   dc <- dc f + g_i V_i + g_f V_f;  dv += [g_i c_prev, g_f c_prev, g_o c] (summed over rows).
// dh = dh_from_above + dhr (the recurrent part); gates and grad_pre rows of 4H; c_prev, c, tc,
// dh, dhr, dc rows of H; v, dv (3, H) or nullptr.
template <typename T, bool Peep>
SIMD_CLONES void lstm_grad(const T* __restrict__ a, const T* __restrict__ cp,
                           const T* __restrict__ c, const T* __restrict__ tc,
                           const T* __restrict__ v, const T* __restrict__ dh,
                           const T* __restrict__ dhr, T* __restrict__ dc, T* __restrict__ gp,
                           T* __restrict__ dv, int64_t batch, int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; ++j) {
      const int64_t k = b * hidden + j, k4 = 4 * b * hidden + j;
      const T i = a[k4], f = a[k4 + hidden], g = a[k4 + 2 * hidden], o = a[k4 + 3 * hidden];
      const T d = dh[k] + dhr[k], t = tc[k], cpk = cp[k];
      const T k_o = t * o * (T(1) - o);
      const T go = d * k_o;
      T k_c = o * (T(1) - t * t);
      if (Peep) k_c += k_o * v[2 * hidden + j];
      const T dcn = dc[k] + d * k_c;
      const T gi = dcn * (g * i * (T(1) - i));
      const T gf = dcn * (cpk * f * (T(1) - f));
      gp[k4] = gi;
      gp[k4 + hidden] = gf;
      gp[k4 + 2 * hidden] = dcn * (i * (T(1) - g * g));
      gp[k4 + 3 * hidden] = go;
      if (Peep) {
        dc[k] = dcn * f + gi * v[j] + gf * v[hidden + j];
        dv[j] += gi * cpk;
        dv[hidden + j] += gf * cpk;
        dv[2 * hidden + j] += go * c[k];
      } else {
        dc[k] = dcn * f;
      }
    }
}

// Contiguous; with members (stacked), each member's slice contiguous: the population's buffers
// pad the member stride so that every member's slice is aligned as a fresh tensor is.
void check_contiguous(std::initializer_list<const Tensor*> xs, const char* what,
                      bool stacked = false) {
  for (const Tensor* x : xs)
    TORCH_CHECK(stacked ? x->size(0) == 0 || x->select(0, 0).is_contiguous() : x->is_contiguous(),
                what, stacked ? " must be contiguous per member" : " must be contiguous");
}

// For tests: c (M, N) = beta c + alpha a (M, K) @ w (K, N), through the same RightOperand the
// loops use (the packed kernel where it applies). a and c need contiguous rows.
void recurrent_product(Tensor c, const Tensor& a, const Tensor& w, double alpha, double beta) {
  TORCH_CHECK(a.dim() == 2 && c.dim() == 2 && w.dim() == 2 && a.size(1) == w.size(0) &&
                  c.size(0) == a.size(0) && c.size(1) == w.size(1),
              "recurrent_matmul: shapes must be c (M, N), a (M, K), w (K, N)");
  TORCH_CHECK(a.stride(1) == 1 && c.stride(1) == 1, "recurrent_matmul: rows must be contiguous");
  TORCH_CHECK(a.scalar_type() == c.scalar_type() && w.scalar_type() == c.scalar_type(),
              "recurrent_matmul: one dtype for all operands");
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "recurrent_matmul", [&] {
    RightOperand(w).multiply<scalar_t>(a.data_ptr<scalar_t>(), a.stride(0),
                                       c.data_ptr<scalar_t>(), c.stride(0), a.size(0),
                                       static_cast<scalar_t>(alpha), static_cast<scalar_t>(beta));
  });
}

// ---------------------------------------------------------------------------------------------
// The loops over time, called from Python.

// A (B, H) state buffer; for a population (P, B, H), each member's slice starting on a 64-byte
// boundary as a fresh tensor does (products on misaligned operands may round differently).
Tensor state_buffer(const Tensor& like, const Members& m, int64_t batch, int64_t hidden) {
  if (!m.stacked) return at::empty({batch, hidden}, like.options());
  const int64_t unit = std::max<int64_t>(1, 64 / static_cast<int64_t>(like.element_size()));
  const int64_t stride = (batch * hidden + unit - 1) / unit * unit;
  return at::empty({m.count * stride}, like.options())
      .as_strided({m.count, batch, hidden}, {stride, hidden, 1});
}

// grad_h as the buffer the backward loops write into: itself for one run, an aligned copy for
// a population.
Tensor state_gradient(const Tensor& grad_h, const Members& m, int64_t batch, int64_t hidden) {
  if (!m.stacked) return grad_h;
  Tensor buffer = state_buffer(grad_h, m, batch, hidden);
  buffer.copy_(grad_h);
  return buffer;
}

// Member layout (a population of P runs): every tensor below gains a leading member dimension,
// (T, B, K) -> (P, T, B, K), (B, H) -> (P, B, H), the weights (P, ., .), biases and peepholes
// (P, .); member p's loop multiplies its B rows by its own weights and runs the elementwise
// passes on its rows, exactly as the single run would. The members run one after another
// (members are independent), so that each member's weights stay in cache over its sequence as
// one run's do. Without the member dimension (2-d weights) everything is as for one run.

// tanh RNN: h_t = tanh(a_t), a_t = W x_t + b + U h_{t-1}.
// out (T, B, H): W x_t + b in, h_t out; h0 (B, H); w_hh_t (H, H) = U^T.
void tanh_forward(Tensor out, const Tensor& h0, const Tensor& w_hh_t) {
  const Members m(w_hh_t);
  check_contiguous({&out}, "out", m.stacked);
  const int64_t steps = out.size(-3), batch = out.size(-2), hidden = out.size(-1);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "tanh_forward", [&] {
    Rows<scalar_t> h(out, m.stacked), first(h0, m.stacked);
    const MemberOperands u_t(w_hh_t);
    for (int64_t p = 0; p < m.count; ++p)
      for (int64_t t = 0; t < steps; ++t) {
        const scalar_t* prev = t == 0 ? first.at(0, p) : h.at(t - 1, p);
        u_t[p].multiply<scalar_t>(prev, t == 0 ? first.s1 : h.s1, h.at(t, p), h.s1, batch, 1, 1);
        tanh_rows(h.at(t, p), h.s1, batch, hidden);
      }
  });
}

// grad_pre (T, B, H): dL/dh_t (from above) in, dL/da_t out; grad_hn (B, H) = dL/dh_{T-1} from
// h_n; out (T, B, H) = h_t; weight_hh (H, H).
void tanh_backward(Tensor grad_pre, const Tensor& grad_hn, const Tensor& out,
                   const Tensor& weight_hh) {
  const Members m(weight_hh);
  check_contiguous({&grad_pre, &out}, "grad_pre, out", m.stacked);
  const int64_t steps = grad_pre.size(-3), batch = grad_pre.size(-2), hidden = grad_pre.size(-1);
  grad_pre.select(-3, steps - 1).add_(grad_hn);
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "tanh_backward", [&] {
    Rows<scalar_t> g(grad_pre, m.stacked), h(out, m.stacked);
    const MemberOperands u(weight_hh);
    for (int64_t p = 0; p < m.count; ++p)
      tanh_grad(g.at(steps - 1, p), h.at(steps - 1, p), batch, hidden);
    for (int64_t p = 0; p < m.count; ++p)
      for (int64_t t = steps - 1; t > 0; --t) {
        u[p].multiply<scalar_t>(g.at(t, p), g.s1, g.at(t - 1, p), g.s1, batch, 1, 1);
        tanh_grad(g.at(t - 1, p), h.at(t - 1, p), batch, hidden);
      }
  });
}

// The paper's GRU: r, z = sigmoid(.), h~ = tanh(W x + U (r * h) + b), h = lerp(h, h~, z).
// gates (T, B, 3H): input projections in, [r, z, h~] out; h0 (B, H); u_rz_t (H, 2H);
// u_n_t (H, H); reset_h (T, B, H) <- r_t * h_{t-1}; out (T, B, H) <- h_t.
void paper_gru_forward(Tensor gates, const Tensor& h0, const Tensor& u_rz_t,
                       const Tensor& u_n_t, Tensor reset_h, Tensor out) {
  const Members m(u_rz_t);
  check_contiguous({&gates, &reset_h, &out}, "buffers", m.stacked);
  const int64_t steps = out.size(-3), batch = out.size(-2), hidden = out.size(-1);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "paper_gru_forward", [&] {
    Rows<scalar_t> g(gates, m.stacked), rh(reset_h, m.stacked), h(out, m.stacked),
        first(h0, m.stacked);
    const MemberOperands u_rz(u_rz_t), u_n(u_n_t);
    for (int64_t p = 0; p < m.count; ++p)
      for (int64_t t = 0; t < steps; ++t) {
        const scalar_t* hp = t == 0 ? first.at(0, p) : h.at(t - 1, p);
        const int64_t shp = t == 0 ? first.s1 : h.s1;
        scalar_t* gt = g.at(t, p);
        u_rz[p].multiply<scalar_t>(hp, shp, gt, g.s1, batch, 1, 1);  // [r, z] columns
        paper_gru_gates(gt, g.s1, hp, shp, rh.at(t, p), rh.s1, batch, hidden);
        u_n[p].multiply<scalar_t>(rh.at(t, p), rh.s1, gt + 2 * hidden, g.s1, batch, 1, 1);
        paper_gru_state(gt, g.s1, hp, shp, h.at(t, p), h.s1, batch, hidden);
      }
  });
}

// grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1}, used as a buffer; gates (T, B, 3H) = [r, z, h~];
// h0 (B, H); out (T, B, H) = h_t; u_rz (2H, H); u_n (H, H); grad_pre (T, B, 3H) <- dL/d[a_r, a_z,
// a_n]. Returns dL/dh0 (B, H).
Tensor paper_gru_backward(const Tensor& grad_out, Tensor grad_h, const Tensor& gates,
                          const Tensor& h0, const Tensor& out, const Tensor& u_rz,
                          const Tensor& u_n, Tensor grad_pre) {
  const Members m(u_rz);
  check_contiguous({&grad_out, &grad_h, &gates, &h0, &out, &grad_pre},
                   "paper_gru_backward operands", m.stacked);
  const int64_t steps = grad_out.size(-3), batch = grad_out.size(-2), hidden = grad_out.size(-1);
  grad_h = state_gradient(grad_h, m, batch, hidden);
  Tensor grad_next = state_buffer(grad_h, m, batch, hidden);
  Tensor grad_rh = at::empty({batch, hidden}, grad_h.options());  // dL/d(r_t * h_{t-1})
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "paper_gru_backward", [&] {
    Rows<scalar_t> carry(grad_out, m.stacked), g(gates, m.stacked), h(out, m.stacked),
        gp(grad_pre, m.stacked);
    scalar_t* drh = grad_rh.data_ptr<scalar_t>();
    const MemberOperands u_n_right(u_n), u_rz_right(u_rz);
    // member by member (its weights stay in cache); dh and next take turns per step
    for (int64_t p = 0; p < m.count; ++p) {
      scalar_t* dh = m.of<scalar_t>(grad_h, p);
      scalar_t* next = m.of<scalar_t>(grad_next, p);
      for (int64_t t = steps - 1; t >= 0; --t) {
        const scalar_t* hp = t > 0 ? h.at(t - 1, p) : m.of<scalar_t>(h0, p);
        paper_gru_grad_zn(g.at(t, p), hp, dh, gp.at(t, p), batch, hidden);
        u_n_right[p].multiply<scalar_t>(gp.at(t, p) + 2 * hidden, gp.s1, drh, hidden, batch);
        paper_gru_grad_r(g.at(t, p), hp, dh, drh,
                         t > 0 ? carry.at(t - 1, p) : static_cast<const scalar_t*>(nullptr),
                         gp.at(t, p), next, batch, hidden);
        u_rz_right[p].multiply<scalar_t>(gp.at(t, p), gp.s1, next, hidden, batch, 1, 1);
        std::swap(dh, next);
      }
    }
  });
  if (steps % 2 == 1) std::swap(grad_h, grad_next);  // where dL/dh0 ended, for every member
  return grad_h;
}

// torch.nn's GRU: n = tanh(W_n x + b_in + r * (U_n h + b_hn)), h = lerp(n, h, z).
// gates (T, B, 3H): W x + b_ih in, [r, z, n] out; h0 (B, H); w_hh_t (H, 3H); bias_hh (3H,);
// recur (T, B, 3H) <- U h_{t-1} + b_hh; out (T, B, H) <- h_t.
void reset_after_gru_forward(Tensor gates, const Tensor& h0, const Tensor& w_hh_t,
                             const Tensor& bias_hh, Tensor recur, Tensor out) {
  const Members m(w_hh_t);
  check_contiguous({&gates, &recur, &out}, "buffers", m.stacked);
  const int64_t steps = out.size(-3), batch = out.size(-2), hidden = out.size(-1);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "reset_after_gru_forward", [&] {
    Rows<scalar_t> g(gates, m.stacked), rec(recur, m.stacked), h(out, m.stacked),
        first(h0, m.stacked);
    const MemberOperands u_t(w_hh_t);
    const Tensor bias = bias_hh.contiguous();  // (3H,) or (P, 3H)
    for (int64_t p = 0; p < m.count; ++p)
      for (int64_t t = 0; t < steps; ++t) {
        const scalar_t* b_hh = m.of<scalar_t>(bias, p);
        for (int64_t b = 0; b < batch; ++b)  // rec_t = b_hh + U h_{t-1}
          std::copy(b_hh, b_hh + 3 * hidden, rec.at(t, p) + b * rec.s1);
        const scalar_t* hp = t == 0 ? first.at(0, p) : h.at(t - 1, p);
        const int64_t shp = t == 0 ? first.s1 : h.s1;
        u_t[p].multiply<scalar_t>(hp, shp, rec.at(t, p), rec.s1, batch, 1, 1);
        reset_after_gru_cell(g.at(t, p), g.s1, rec.at(t, p), rec.s1, hp, shp, h.at(t, p), h.s1,
                             batch, hidden);
      }
  });
}

// grad_out (T, B, H); grad_h (B, H): dL/dh_{T-1}, used as a buffer; gates (T, B, 3H) = [r, z, n];
// recur (T, B, 3H) = U h_{t-1} + b_hh; h0 (B, H); out (T, B, H) = h_t; weight_hh (3H, H);
// grad_recur (T, B, 3H) <- dL/d(U h + b_hh); grad_n (T, B, H) <- dL/d(pre-activation of n).
// Returns dL/dh0 (B, H).
Tensor reset_after_gru_backward(const Tensor& grad_out, Tensor grad_h, const Tensor& gates,
                                const Tensor& recur, const Tensor& h0, const Tensor& out,
                                const Tensor& weight_hh, Tensor grad_recur, Tensor grad_n) {
  const Members m(weight_hh);
  check_contiguous({&grad_out, &grad_h, &gates, &recur, &h0, &out, &grad_recur, &grad_n},
                   "reset_after_gru_backward operands", m.stacked);
  const int64_t steps = grad_out.size(-3), batch = grad_out.size(-2), hidden = grad_out.size(-1);
  grad_h = state_gradient(grad_h, m, batch, hidden);
  Tensor grad_next = state_buffer(grad_h, m, batch, hidden);
  AT_DISPATCH_FLOATING_TYPES(grad_recur.scalar_type(), "reset_after_gru_backward", [&] {
    Rows<scalar_t> carry(grad_out, m.stacked), g(gates, m.stacked), rec(recur, m.stacked),
        h(out, m.stacked), gr(grad_recur, m.stacked), gn(grad_n, m.stacked);
    const MemberOperands u(weight_hh);
    // member by member (its weights stay in cache); dh and next take turns per step
    for (int64_t p = 0; p < m.count; ++p) {
      scalar_t* dh = m.of<scalar_t>(grad_h, p);
      scalar_t* next = m.of<scalar_t>(grad_next, p);
      for (int64_t t = steps - 1; t >= 0; --t) {
        reset_after_gru_grad(
            g.at(t, p), rec.at(t, p), t > 0 ? h.at(t - 1, p) : m.of<scalar_t>(h0, p), dh,
            t > 0 ? carry.at(t - 1, p) : static_cast<const scalar_t*>(nullptr), gr.at(t, p),
            gn.at(t, p), next, batch, hidden);
        u[p].multiply<scalar_t>(gr.at(t, p), gr.s1, next, hidden, batch, 1, 1);
        std::swap(dh, next);
      }
    }
  });
  if (steps % 2 == 1) std::swap(grad_h, grad_next);  // where dL/dh0 ended, for every member
  return grad_h;
}

// LSTM, gates (i, f, g, o), optional diagonal peepholes V_i, V_f (on c_{t-1}), V_o (on c_t).
// gates (T, B, 4H): input projections in, [i, f, g, o] out; h0, c0 (B, H); w_hh_t (H, 4H);
// peephole (3, H) or None; cells, tanh_cells, out (T, B, H) <- c_t, tanh(c_t), h_t.
void lstm_forward(Tensor gates, const Tensor& h0, const Tensor& c0, const Tensor& w_hh_t,
                  const std::optional<Tensor>& peephole, Tensor cells, Tensor tanh_cells,
                  Tensor out) {
  const Members m(w_hh_t);
  check_contiguous({&gates, &cells, &tanh_cells, &out}, "buffers", m.stacked);
  const int64_t steps = out.size(-3), batch = out.size(-2), hidden = out.size(-1);
  const bool peep = peephole.has_value() && peephole->defined();
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    Rows<scalar_t> g(gates, m.stacked), c(cells, m.stacked), tc(tanh_cells, m.stacked),
        h(out, m.stacked), first_h(h0, m.stacked), first_c(c0, m.stacked);
    const Tensor v = peep ? peephole->contiguous() : Tensor();  // (3, H) or (P, 3, H)
    const MemberOperands u_t(w_hh_t);
    // U h_{t-1} goes to a small buffer that stays in cache; the cell adds it to gates[t].
    Tensor rec = at::empty({batch, 4 * hidden}, gates.options());
    scalar_t* rp = rec.data_ptr<scalar_t>();
    for (int64_t p = 0; p < m.count; ++p)
      for (int64_t t = 0; t < steps; ++t) {
        u_t[p].multiply<scalar_t>(t == 0 ? first_h.at(0, p) : h.at(t - 1, p),
                                  t == 0 ? first_h.s1 : h.s1, rp, 4 * hidden, batch);
        const scalar_t* cp = t == 0 ? first_c.at(0, p) : c.at(t - 1, p);
        const int64_t scp = t == 0 ? first_c.s1 : c.s1;
        if (peep)
          lstm_cell<scalar_t, true>(g.at(t, p), g.s1, rp, cp, scp, c.at(t, p), tc.at(t, p),
                                    h.at(t, p), m.of<scalar_t>(v, p), batch,
                                    hidden);
        else
          lstm_cell<scalar_t, false>(g.at(t, p), g.s1, rp, cp, scp, c.at(t, p), tc.at(t, p),
                                     h.at(t, p), nullptr, batch, hidden);
      }
  });
}

// grad_hs (T, B, H): dL/dh_t from above (read only here; a buffer for the Python loops); grad_c
// (B, H): dL/dc_{T-1} in, dL/dc0 out; gates (T, B, 4H) = [i, f, g, o]; c0 (B, H); cells,
// tanh_cells (T, B, H); peephole (3, H) or None; weight_hh (4H, H); grad_pre (T, B, 4H) <-
// dL/d[a_i, a_f, a_g, a_o]; grad_peephole (3, H) zeros in, dL/dV out (ignored without
// peepholes).
void lstm_backward(Tensor grad_hs, Tensor grad_c, const Tensor& gates, const Tensor& c0,
                   const Tensor& cells, const Tensor& tanh_cells,
                   const std::optional<Tensor>& peephole, const Tensor& weight_hh,
                   Tensor grad_pre, Tensor grad_peephole) {
  const Members m(weight_hh);
  check_contiguous(
      {&grad_hs, &grad_c, &gates, &c0, &cells, &tanh_cells, &grad_pre, &grad_peephole},
      "lstm_backward operands", m.stacked);
  const int64_t steps = grad_hs.size(-3), batch = grad_hs.size(-2), hidden = grad_hs.size(-1);
  const bool peep = peephole.has_value() && peephole->defined();
  AT_DISPATCH_FLOATING_TYPES(grad_pre.scalar_type(), "lstm_backward", [&] {
    Rows<scalar_t> gh(grad_hs, m.stacked), g(gates, m.stacked), c(cells, m.stacked),
        tc(tanh_cells, m.stacked), gp(grad_pre, m.stacked);
    const Tensor v = peep ? peephole->contiguous() : Tensor();
    // dL/dh_t through h_{t+1}'s gates, in a small buffer that stays in cache (zeros at T-1).
    Tensor grad_rec = at::zeros({batch, hidden}, grad_c.options());
    scalar_t* dhr = grad_rec.data_ptr<scalar_t>();
    const MemberOperands u(weight_hh);
    for (int64_t p = 0; p < m.count; ++p) {
      if (p > 0) grad_rec.zero_();
      for (int64_t t = steps - 1; t >= 0; --t) {
        if (t < steps - 1) u[p].multiply<scalar_t>(gp.at(t + 1, p), gp.s1, dhr, hidden, batch);
        const scalar_t* cp = t > 0 ? c.at(t - 1, p) : m.of<scalar_t>(c0, p);
        scalar_t* dc = m.of<scalar_t>(grad_c, p);
        if (peep)
          lstm_grad<scalar_t, true>(g.at(t, p), cp, c.at(t, p), tc.at(t, p),
                                    m.of<scalar_t>(v, p), gh.at(t, p), dhr, dc,
                                    gp.at(t, p),
                                    m.of<scalar_t>(grad_peephole, p), batch,
                                    hidden);
        else
          lstm_grad<scalar_t, false>(g.at(t, p), cp, c.at(t, p), tc.at(t, p), nullptr,
                                     gh.at(t, p), dhr, dc, gp.at(t, p), nullptr, batch, hidden);
      }
    }
  });
}

}  // namespace

// Argument names as in models/loops_python.py (tests/models/test_kernels.py compares them), so a
// call with a wrong argument is answered with the names and types of the right ones.
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using py::arg;
  m.doc() = "Per-time-step loops of gru_repro's recurrent units (see loops.cpp)";
  m.def("tanh_forward", &tanh_forward, arg("out"), arg("h0"), arg("w_hh_t"));
  m.def("tanh_backward", &tanh_backward, arg("grad_pre"), arg("grad_hn"), arg("out"),
        arg("weight_hh"));
  m.def("paper_gru_forward", &paper_gru_forward, arg("gates"), arg("h0"), arg("u_rz_t"),
        arg("u_n_t"), arg("reset_h"), arg("out"));
  m.def("paper_gru_backward", &paper_gru_backward, arg("grad_out"), arg("grad_h"), arg("gates"),
        arg("h0"), arg("out"), arg("u_rz"), arg("u_n"), arg("grad_pre"));
  m.def("reset_after_gru_forward", &reset_after_gru_forward, arg("gates"), arg("h0"),
        arg("w_hh_t"), arg("bias_hh"), arg("recur"), arg("out"));
  m.def("reset_after_gru_backward", &reset_after_gru_backward, arg("grad_out"), arg("grad_h"),
        arg("gates"), arg("recur"), arg("h0"), arg("out"), arg("weight_hh"), arg("grad_recur"),
        arg("grad_n"));
  m.def("lstm_forward", &lstm_forward, arg("gates"), arg("h0"), arg("c0"), arg("w_hh_t"),
        arg("peephole").none(true), arg("cells"), arg("tanh_cells"), arg("out"));
  m.def("lstm_backward", &lstm_backward, arg("grad_hs"), arg("grad_c"), arg("gates"), arg("c0"),
        arg("cells"), arg("tanh_cells"), arg("peephole").none(true), arg("weight_hh"),
        arg("grad_pre"), arg("grad_peephole"));
  m.def("set_packed_matmul", &recurrent_matmul::set_packed,
        "switch the packed AVX-512 kernel for the recurrent products on or off; returns whether "
        "it is on (never where the CPU lacks AVX-512F)");
  m.def("packed_matmul_on", [] { return recurrent_matmul::packed_switch(); },
        "whether the recurrent products run through the packed AVX-512 kernel");
  m.def("recurrent_matmul", &recurrent_product, "c = beta c + alpha a @ w, as the loops do it",
        arg("c"), arg("a"), arg("w"), arg("alpha"), arg("beta"));
}
