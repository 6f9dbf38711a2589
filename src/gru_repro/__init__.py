"""Reproduction of Chung, Gulcehre, Cho & Bengio (2014): tanh-RNN vs GRU vs LSTM."""

__version__ = "0.1.0"
