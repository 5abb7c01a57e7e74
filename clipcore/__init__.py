"""clipcore: the executable companion to two papers on gradient clipping.

Zhang, He, Sra, Jadbabaie, "Why gradient clipping accelerates training" (ICLR 2020) and
Qian et al., "Understanding gradient clipping in incremental gradient methods" (AISTATS 2021).
"""

__version__ = "0.1.0"
