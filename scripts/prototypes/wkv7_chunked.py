#!/usr/bin/env python3
"""The chunked (WY) form of the wkv7 recurrence, checked against the sequential scan in float64 (pure Python).

For the next step of issue #4 (RAD-RWKV7 prefill): docs/NOTES.md, eleventh session, "Prefill: the chunked wkv7".
Per head, state row s (1×K) of S [V, K] evolves as s_t = s_{t-1} diag(w_t) + (s_{t-1}·a_t) b_t^T + v_t k_t^T
and y_t = s_t·r_t (the CPU reference, CpuOps.Wkv7). Within a chunk of L tokens from s_0, with γ_t = Π_{τ≤t} w_τ:
    u = s_0 P + v Q,   y = s_0 R' + v W',   s_L = s_0 ⊙ γ_L + u B~ + v K~
where P = Ã T, Q = A_ak^T T, R' = R~ + P A_rb^T, W' = A_rk^T + Q A_rb^T, T = (I − A_ab^T)^{-1},
Ã[:, t] = a_t ⊙ γ_{t-1}, R~[:, t] = r_t ⊙ γ_t, B~[i, :] = b_i ⊙ γ_L/γ_i, K~[i, :] = k_i ⊙ γ_L/γ_i,
A_ab[t, i] = Σ_j Ã[j, t] b_i[j]/γ_i[j] (i < t), A_ak the same with k_i, A_rb[t, i] = Σ_j R~[j, t] b_i[j]/γ_i[j]
(i ≤ t), A_rk the same with k_i. Every L×L matrix is shared by the head's rows; only the chunk steps are sequential.
A last chunk shorter than L is padded with tokens that change nothing (w = 1, a = b = k = r = 0), checked here.
Decays are drawn as RAD-RWKV7 makes them (w = exp(−e^{−0.5} σ(z)) ∈ (0.545, 1)), so γ over a chunk stays far from
fp32's range ends. Prints the largest differences; exits 1 if they exceed 1e-12 of the outputs' scale.
"""
import math
import random
import sys


def sequential(S0, r, w, k, v, a, b):
    S = [row[:] for row in S0]
    n, ys = len(S0), []
    for t in range(len(r)):
        y = [0.0] * n
        for i in range(n):
            sa = sum(a[t][j] * S[i][j] for j in range(n))
            S[i] = [S[i][j] * w[t][j] + v[t][i] * k[t][j] + sa * b[t][j] for j in range(n)]
            y[i] = sum(S[i][j] * r[t][j] for j in range(n))
        ys.append(y)
    return ys, S


def inverse_unit_upper(M, L):
    """(I − M)^{-1} for a strictly upper-triangular M, from T = I + M T, bottom row first."""
    T = [[0.0] * L for _ in range(L)]
    for i in reversed(range(L)):
        for c in range(L):
            T[i][c] = (1.0 if i == c else 0.0) + sum(M[i][j] * T[j][c] for j in range(i + 1, L))
    return T


def chunked(S0, r, w, k, v, a, b, L):
    n, tokens = len(S0), len(r)
    pad = (-tokens) % L
    zero, one = [0.0] * n, [1.0] * n
    r, k, a, b = (x + [zero] * pad for x in (r, k, a, b))
    w, v = w + [one] * pad, v + [zero] * pad
    S, ys = [row[:] for row in S0], []
    for c0 in range(0, tokens + pad, L):
        idx = range(c0, c0 + L)
        g, acc = [], [1.0] * n
        for t in idx:
            acc = [acc[j] * w[t][j] for j in range(n)]
            g.append(acc)
        gprev = [[1.0] * n] + g[:-1]
        at = [[a[idx[t]][j] * gprev[t][j] for j in range(n)] for t in range(L)]   # columns of Ã
        rt = [[r[idx[t]][j] * g[t][j] for j in range(n)] for t in range(L)]       # columns of R~
        bq = [[b[idx[i]][j] / g[i][j] for j in range(n)] for i in range(L)]
        kq = [[k[idx[i]][j] / g[i][j] for j in range(n)] for i in range(L)]
        dot = lambda x, y: sum(p * q for p, q in zip(x, y))
        Aab = [[dot(at[t], bq[i]) if i < t else 0.0 for i in range(L)] for t in range(L)]
        Aak = [[dot(at[t], kq[i]) if i < t else 0.0 for i in range(L)] for t in range(L)]
        Arb = [[dot(rt[t], bq[i]) if i <= t else 0.0 for i in range(L)] for t in range(L)]
        Ark = [[dot(rt[t], kq[i]) if i <= t else 0.0 for i in range(L)] for t in range(L)]
        T = inverse_unit_upper([[Aab[t][i] for t in range(L)] for i in range(L)], L)
        P = [[sum(at[m][j] * T[m][t] for m in range(L)) for t in range(L)] for j in range(n)]
        Q = [[sum(Aak[m][i] * T[m][t] for m in range(L)) for t in range(L)] for i in range(L)]
        Rp = [[rt[t][j] + sum(P[j][m] * Arb[t][m] for m in range(L)) for t in range(L)] for j in range(n)]
        Wp = [[Ark[t][i] + sum(Q[i][m] * Arb[t][m] for m in range(L)) for t in range(L)] for i in range(L)]
        gL = g[-1]
        Bt = [[bq[i][j] * gL[j] for j in range(n)] for i in range(L)]
        Kt = [[kq[i][j] * gL[j] for j in range(n)] for i in range(L)]
        Y = [[0.0] * n for _ in range(L)]
        for row in range(n):
            s0, vr = S[row], [v[t][row] for t in idx]
            u = [dot(s0, [P[j][t] for j in range(n)]) + dot(vr, [Q[i][t] for i in range(L)]) for t in range(L)]
            for t in range(L):
                Y[t][row] = dot(s0, [Rp[j][t] for j in range(n)]) + dot(vr, [Wp[i][t] for i in range(L)])
            S[row] = [s0[j] * gL[j] + sum(u[i] * Bt[i][j] + vr[i] * Kt[i][j] for i in range(L)) for j in range(n)]
        ys += Y
    return ys[:tokens], S


def case(n, L, tokens, seed):
    rng = random.Random(seed)
    rnd = lambda: [rng.gauss(0, 1) for _ in range(n)]
    unit = lambda x: [e / math.sqrt(sum(f * f for f in x)) for e in x]
    r, k, v = ([rnd() for _ in range(tokens)] for _ in range(3))
    w = [[math.exp(-math.exp(-0.5) / (1 + math.exp(-rng.gauss(0, 2)))) for _ in range(n)] for _ in range(tokens)]
    kappa = [unit(rnd()) for _ in range(tokens)]
    rate = [[rng.random() for _ in range(n)] for _ in range(tokens)]
    a = [[-e for e in kappa[t]] for t in range(tokens)]
    b = [[kappa[t][j] * rate[t][j] for j in range(n)] for t in range(tokens)]
    S0 = [rnd() for _ in range(n)]
    ys, Ss = sequential(S0, r, w, k, v, a, b)
    yc, Sc = chunked(S0, r, w, k, v, a, b, L)
    scale = max(abs(e) for row in ys + Ss for e in row)
    dy = max(abs(p - q) for x, z in zip(ys, yc) for p, q in zip(x, z))
    ds = max(abs(p - q) for x, z in zip(Ss, Sc) for p, q in zip(x, z))
    print(f"N {n} L {L} T {tokens}: max |y − y_seq| {dy:.3g}, max |S − S_seq| {ds:.3g} (outputs up to {scale:.3g})")
    return max(dy, ds) <= 1e-12 * scale


if __name__ == "__main__":
    ok = all([case(8, 4, 12, 1), case(8, 4, 13, 2), case(16, 8, 37, 3), case(12, 16, 16, 4), case(8, 8, 1, 5)])
    print("chunked form equals the scan" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)
