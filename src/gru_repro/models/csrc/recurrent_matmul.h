// The recurrent product of every time step, c = beta c + alpha a W, with the same W (the
// recurrent weights) at every step: a (B, K) are B rows of states or gradients, W (K, N).
//
// Why hand-written: at the paper's sizes these are small products (B = 16 rows) that torch
// sends to MKL, and MKL runs its AVX2 code on non-Intel CPUs even when they have AVX-512. On
// the AMD EPYC (Zen 5) machines this project runs on, torch.mm reaches about 75-80 GFLOPS for
// (16 x 195) x (195 x 780) while the kernel below reaches about 220 (one thread, float32),
// which is what nn.LSTM's oneDNN kernel gets and what decides the speed of the speech units.
// The kernel is the textbook register-blocked one: W is copied once per sequence into panels
// of 48 columns (K x 48 floats each, zero-padded), and an 8 x 48 block of c is accumulated in
// 24 AVX-512 registers over k. float32 on CPUs with AVX-512F only; everything else (float64,
// other CPUs, or the switch set_packed_matmul(false)) goes through at::mm as before. The sums
// run in a different order than MKL's, so results agree with it up to rounding.

#pragma once

#include <torch/extension.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define GRU_REPRO_HAVE_PACKED 1
#else
#define GRU_REPRO_HAVE_PACKED 0
#endif

namespace recurrent_matmul {

using at::Tensor;

constexpr int64_t kPanel = 48;  // columns per packed panel: 3 AVX-512 vectors of 16 floats
constexpr int kRows = 8;        // rows of c per block: 8 x 3 = 24 accumulator registers

// Whether this CPU can run the packed kernel (AVX-512F), and whether it is switched on.
inline bool packed_supported() {
#if GRU_REPRO_HAVE_PACKED
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}
inline bool& packed_switch() {
  static bool on = packed_supported();
  return on;
}
// Turns the packed kernel on or off (on only where supported); returns whether it is on now.
inline bool set_packed(bool on) {
  packed_switch() = on && packed_supported();
  return packed_switch();
}

#if GRU_REPRO_HAVE_PACKED
// c (Rows rows of stride ldc, first `cols` <= 48 columns) = beta c + alpha a @ panel, where a is
// Rows rows of K (stride lda) and panel the K x 48 packed columns.
template <int Rows>
__attribute__((target("avx512f"))) void panel_block(const float* a, int64_t lda,
                                                    const float* panel, int64_t k_size,
                                                    float* c, int64_t ldc, int64_t cols,
                                                    float alpha, float beta) {
  __m512 acc[Rows][3];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r)
    for (int j = 0; j < 3; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < k_size; ++k) {
    const float* w = panel + k * kPanel;
    const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16),
                 w2 = _mm512_loadu_ps(w + 32);
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * lda + k]);
      acc[r][0] = _mm512_fmadd_ps(ar, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, w1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(ar, w2, acc[r][2]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int j = 0; j < 3; ++j) {
    const int64_t left = cols - 16 * j;
    if (left <= 0) break;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
      float* out = c + r * ldc + 16 * j;
      __m512 v = _mm512_mul_ps(va, acc[r][j]);
      if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, out), v);
      _mm512_mask_storeu_ps(out, mask, v);  // beta = 0 never reads c (it may hold garbage)
    }
  }
}

template <int Rows>
void panel_block_n(int rows, const float* a, int64_t lda, const float* panel, int64_t k_size,
                   float* c, int64_t ldc, int64_t cols, float alpha, float beta) {
  if constexpr (Rows > 0) {
    if (rows == Rows)
      return panel_block<Rows>(a, lda, panel, k_size, c, ldc, cols, alpha, beta);
    panel_block_n<Rows - 1>(rows, a, lda, panel, k_size, c, ldc, cols, alpha, beta);
  }
}
#endif

// W (K, N) prepared for many products a @ W: packed when the kernel applies, else kept as is.
class RightOperand {
 public:
  explicit RightOperand(const Tensor& w) : w_(w), k_(w.size(0)), n_(w.size(1)) {
    TORCH_CHECK(w.dim() == 2, "the recurrent weight must be a matrix");
    packed_ = w.scalar_type() == at::kFloat && packed_switch();
    if (packed_) pack();
  }

  // c (m rows of N, stride ldc) = beta c + alpha a (m rows of K, stride lda) @ W. Row strides
  // may exceed the row length (gate blocks of a wider buffer); rows are contiguous.
  template <typename T>
  void multiply(const T* a, int64_t lda, T* c, int64_t ldc, int64_t m, T alpha = T(1),
                T beta = T(0)) const {
#if GRU_REPRO_HAVE_PACKED
    if constexpr (std::is_same_v<T, float>) {
      if (packed_) {
        const float* panels = panels_.data_ptr<float>();
        for (int64_t p = 0; p * kPanel < n_; ++p) {
          const float* panel = panels + p * k_ * kPanel;
          const int64_t cols = std::min(kPanel, n_ - p * kPanel);
          for (int64_t r = 0; r < m; r += kRows)
            panel_block_n<kRows>(static_cast<int>(std::min<int64_t>(kRows, m - r)),
                                 a + r * lda, lda, panel, k_, c + r * ldc + p * kPanel, ldc,
                                 cols, alpha, beta);
        }
        return;
      }
    }
#endif
    const auto options = w_.options();
    const Tensor av = at::from_blob(const_cast<T*>(a), {m, k_}, {lda, 1}, options);
    Tensor cv = at::from_blob(c, {m, n_}, {ldc, 1}, options);
    if (beta == T(0)) {
      at::mm_out(cv, av, w_);
      if (alpha != T(1)) cv.mul_(alpha);
    } else {
      cv.addmm_(av, w_, beta, alpha);
    }
  }

 private:
  // panels_ (P, K, 48): panel p holds columns 48 p .. 48 p + 47 of W, zeros past N.
  void pack() {
    const int64_t count = (n_ + kPanel - 1) / kPanel;
    panels_ = at::zeros({count, k_, kPanel}, w_.options());
    const auto src = w_.accessor<float, 2>();
    float* dst = panels_.data_ptr<float>();
    auto put = [&](int64_t k, int64_t j) {
      dst[((j / kPanel) * k_ + k) * kPanel + j % kPanel] = src[k][j];
    };
    if (w_.stride(0) <= w_.stride(1)) {  // column-major (a transposed view): read down columns
      for (int64_t j = 0; j < n_; ++j)
        for (int64_t k = 0; k < k_; ++k) put(k, j);
    } else {
      for (int64_t k = 0; k < k_; ++k)
        for (int64_t j = 0; j < n_; ++j) put(k, j);
    }
  }

  Tensor w_, panels_;
  int64_t k_, n_;
  bool packed_ = false;
};

}  // namespace recurrent_matmul
