/*
 * Wayline's single-vehicle local search, compiled.
 *
 * Three functions, the first two judged by the same simulation as
 * edge/sequencer/schedule.py (Evaluator.run and Schedule.cost): soft windows with
 * lateness, the driver's break (taken on arrival, or before leaving when arriving would be
 * past its latest start, or at the end), the shift end, capacity overload with deliveries
 * on board from the start and pickups loaded on the way, the depth term
 * sum dv[i] * (n-1-k) / (n-1), and distance; integer times and distances, a double cost.
 *
 *   cost(...)      -> (cost, distance, lateness, overload, depth) of one order
 *   search(...)    -> (order, cost, stats): an iterated local search from a warm start
 *   construct(...) -> order: the greedy's insertion or nearest neighbour (greedy.py's, the
 *                     same routes), a beam search forwards in time, or that beam over
 *                     the stops with binding windows and the others inserted after it
 *
 * The search: 2-opt (segment reversal), or-opt (a segment of 1 to `segment` stops, 3 by
 * default, `segment_after` in the descents after a kick, moved next to a near stop, both
 * orientations) and swap, over granular neighbour lists (the k stops nearest by travel
 * time plus the wait or lateness their windows imply), first improvement with don't-look
 * bits. A move rewrites the positions lo..hi only, so it is priced by simulating from the
 * cached state before lo, through the span, and on along
 * the old suffix until the state (time, break pending) is the old state at the same
 * position, when the old suffix's totals are added; with no break pending, also as soon
 * as every later service provably shifts by the same amount (no wait absorbs it, no
 * ready time stops it, no stop changes from late to on time or back), when the suffix's
 * lateness changes by that amount per late stop, or as soon as a later departure is one
 * the suffix's waits absorb before any stop (or the shift end) is made late, where none
 * was. Inside the span, a block of the old route that the move only shifts (or-opt and
 * swap) is added rather than simulated from where its schedule is back in step with the
 * old one. Every term only grows along the route, so a move is dropped as soon as a
 * lower bound (the new distance and the parts outside the span, before the span is even
 * written out: the span's distance comes from prefix sums along the route, forwards and
 * backwards; then the partial cost plus what the suffix cannot lose) reaches the current
 * cost. Each applied move's exact cost is checked against its price (stats "mispriced").
 * Between descents a kick, one of two at random: two adjacent segments exchanged, or a
 * run of stops each moved to the cheapest place next to one of its near stops, a few
 * places away at least, whatever it costs (a ruin and recreate in small; stats
 * "relocated" counts those stops); then an acceptance rule (no worse than the current
 * route, or, with accept > 0, within that fraction of the best found: record-to-record).
 * With accept_start, that fraction starts there and falls to accept as the square of the
 * share of the run left (by the clock, or by kicks under max_iters): the search roams
 * between basins first and settles in the best it found.
 * Deterministic for a given seed and iteration count; a hard deadline (CLOCK_MONOTONIC)
 * is checked before every stop's neighbourhood. The committed stop (fixed=1) stays first.
 * The GIL is released while the search runs; the inputs are copied first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_EVERY 256 /* evaluations between two looks at the clock */
#define MAX_SEG 3 /* or-opt's longest segment by default (the keyword `segment`) */
#define SEG_LIMIT 8 /* the longest `segment` accepted */
#ifndef SEG_ENDS
#define SEG_ENDS 0 /* or-opt segments that end at the stop too, not only start there */
#endif
#ifndef KICK_MAX
#define KICK_MAX 8 /* longest segment a kick exchanges, longest run it relocates */
#endif
#ifndef KICK_KIND
/* 0: exchange only; 1: a random segment moved next to a near stop; 2: 0 or 1; 3: a run of
 * stops moved each to its cheapest place (relocate_forced); 4: 0 or 3, the default. 4
 * against 0, in interleaved exploratory runs on the benchmark's families and four more
 * van days (0.2 s budget, four seeds a day, gap to the best any run found): the 200-stop
 * van days from a poor order 2.65 % / 2.39 % against 3.31 % / 3.69 % in two runs, the
 * Solomon-derived 200-stop days 0.54 / 0.55 against 0.63 / 0.88, the others within their
 * noise. Exchange against 1 or 2 was better on every family. */
#define KICK_KIND 4
#endif
#ifndef KICK_GAP
#define KICK_GAP 2 /* a stop relocate_forced moves goes further than this many places */
#endif
#ifndef FIRST_IMP
/* the default rule: bit 0, first improvement in the first descent (else the best of a
 * stop's moves); bit 1, in the descents after a kick; bit 2, either at random per kick;
 * bit 3, a second first descent by the other rule, the cheaper being kicked */
#define FIRST_IMP 3
#endif
#ifndef ACCEPT_DECAY
#define ACCEPT_DECAY 2 /* accept_start falls to accept as this power of the run left */
#endif
#ifndef KICKS_MAX
#define KICKS_MAX 2 /* kicks per iteration, 1 to this */
#endif


/* ------------------------------------------------------------------ problem */

typedef struct {
    int m;               /* stops */
    int N;               /* compact nodes: 0..m-1 the stops, m the start, m+1 the end */
    int64_t *tt, *dm;    /* N x N */
    int64_t *ready, *due, *service, *dload;
    double *dv;
    int has_depth;
    int64_t start_time;
    int has_shift_end;
    int64_t shift_end;
    int has_cap;
    int64_t cap, load0;
    int has_break;
    int64_t b_earliest, b_latest, b_dur;
    double wl, wo, wd;
} Prob;

static void prob_free(Prob *p)
{
    free(p->tt);
    free(p->dm);
    free(p->ready);
    free(p->due);
    free(p->service);
    free(p->dload);
    free(p->dv);
    memset(p, 0, sizeof(*p));
}

/* A buffer of 8-byte integers (kind 'i') or doubles (kind 'd'), C-contiguous, ndim. */
static int get_view(PyObject *obj, const char *name, char kind, int ndim, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError,
                     "%s must be a C-contiguous %s array (buffer protocol), got %.100s", name,
                     kind == 'i' ? "int64" : "float64", Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    int ok = view->itemsize == 8 && f[1] == '\0' &&
             (kind == 'i' ? (f[0] == 'l' || f[0] == 'q') : f[0] == 'd');
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s must have dtype %s, got buffer format '%s'", name,
                     kind == 'i' ? "int64" : "float64", view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    if (view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be %d-dimensional, got %d dimensions", name,
                     ndim, view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int64_t *copy_vector(PyObject *obj, const char *name, Py_ssize_t len, int nonneg)
{
    Py_buffer v;
    if (get_view(obj, name, 'i', 1, &v) < 0)
        return NULL;
    if (v.shape[0] != len) {
        PyErr_Format(PyExc_ValueError, "%s has %zd entries, expected %zd (one per stop)", name,
                     v.shape[0], len);
        PyBuffer_Release(&v);
        return NULL;
    }
    int64_t *out = malloc(sizeof(int64_t) * (size_t)(len > 0 ? len : 1));
    if (!out) {
        PyBuffer_Release(&v);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(out, v.buf, sizeof(int64_t) * (size_t)len);
    PyBuffer_Release(&v);
    if (nonneg) {
        for (Py_ssize_t i = 0; i < len; i++)
            if (out[i] < 0) {
                PyErr_Format(PyExc_ValueError, "%s[%zd] is negative", name, i);
                free(out);
                return NULL;
            }
    }
    return out;
}

static int opt_int64(PyObject *obj, const char *name, int *has, int64_t *val)
{
    *has = 0;
    if (obj == NULL || obj == Py_None)
        return 0;
    long long v = PyLong_AsLongLong(obj);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be an integer or None", name);
        return -1;
    }
    *has = 1;
    *val = (int64_t)v;
    return 0;
}

/* Parse and copy everything; on error a ValueError (or MemoryError) is set, *p freed. */
static int prob_init(Prob *p, PyObject *tt, PyObject *dm, PyObject *nodes, PyObject *ready,
                     PyObject *due, PyObject *service, PyObject *dload, PyObject *depth,
                     long long start_node, long long start_time, long long end_node,
                     PyObject *shift_end, PyObject *capacity, long long initial_load,
                     PyObject *brk, double wl, double wo, double wd)
{
    memset(p, 0, sizeof(*p));
    Py_buffer vt, vd, vn, vdep;
    int64_t *nd = NULL;
    if (get_view(tt, "travel_time", 'i', 2, &vt) < 0)
        return -1;
    if (get_view(dm, "distance", 'i', 2, &vd) < 0) {
        PyBuffer_Release(&vt);
        return -1;
    }
    Py_ssize_t M = vt.shape[0];
    if (M == 0 || vt.shape[1] != M || vd.shape[0] != M || vd.shape[1] != M) {
        PyErr_Format(PyExc_ValueError,
                     "travel_time and distance must be square, non-empty and of one size "
                     "(got %zdx%zd and %zdx%zd)",
                     vt.shape[0], vt.shape[1], vd.shape[0], vd.shape[1]);
        goto fail_views;
    }
    if (get_view(nodes, "nodes", 'i', 1, &vn) < 0)
        goto fail_views;
    Py_ssize_t m = vn.shape[0];
    if (m > 1000000) {
        PyErr_SetString(PyExc_ValueError, "too many stops");
        PyBuffer_Release(&vn);
        goto fail_views;
    }
    nd = malloc(sizeof(int64_t) * (size_t)(m + 2));
    if (!nd) {
        PyBuffer_Release(&vn);
        PyErr_NoMemory();
        goto fail_views;
    }
    memcpy(nd, vn.buf, sizeof(int64_t) * (size_t)m);
    PyBuffer_Release(&vn);
    nd[m] = start_node;
    nd[m + 1] = end_node;
    for (Py_ssize_t i = 0; i < m + 2; i++)
        if (nd[i] < 0 || nd[i] >= M) {
            if (i < m)
                PyErr_Format(PyExc_ValueError, "nodes[%zd] = %lld is outside the %zdx%zd matrices",
                             i, (long long)nd[i], M, M);
            else
                PyErr_Format(PyExc_ValueError, "%s node %lld is outside the %zdx%zd matrices",
                             i == m ? "start" : "end", (long long)nd[i], M, M);
            goto fail_views;
        }
    p->m = (int)m;
    p->N = (int)m + 2;
    size_t NN = (size_t)p->N * (size_t)p->N;
    p->tt = malloc(sizeof(int64_t) * NN);
    p->dm = malloc(sizeof(int64_t) * NN);
    if (!p->tt || !p->dm) {
        PyErr_NoMemory();
        goto fail_views;
    }
    const int64_t *T = vt.buf, *D = vd.buf;
    for (int a = 0; a < p->N; a++)
        for (int b = 0; b < p->N; b++) {
            int64_t x = T[nd[a] * M + nd[b]], y = D[nd[a] * M + nd[b]];
            if (x < 0 || y < 0) {
                PyErr_Format(PyExc_ValueError, "%s matrix has a negative entry",
                             x < 0 ? "travel_time" : "distance");
                goto fail_views;
            }
            p->tt[(size_t)a * p->N + b] = x;
            p->dm[(size_t)a * p->N + b] = y;
        }
    PyBuffer_Release(&vt);
    PyBuffer_Release(&vd);
    free(nd);
    nd = NULL;

    if (!(p->ready = copy_vector(ready, "ready", m, 0)) ||
        !(p->due = copy_vector(due, "due", m, 0)) ||
        !(p->service = copy_vector(service, "service", m, 1)) ||
        !(p->dload = copy_vector(dload, "dload", m, 0)))
        goto fail;
    if (get_view(depth, "depth", 'd', 1, &vdep) < 0)
        goto fail;
    if (vdep.shape[0] != m) {
        PyErr_Format(PyExc_ValueError, "depth has %zd entries, expected %zd (one per stop)",
                     vdep.shape[0], m);
        PyBuffer_Release(&vdep);
        goto fail;
    }
    p->dv = malloc(sizeof(double) * (size_t)(m > 0 ? m : 1));
    if (!p->dv) {
        PyBuffer_Release(&vdep);
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(p->dv, vdep.buf, sizeof(double) * (size_t)m);
    PyBuffer_Release(&vdep);
    for (int i = 0; i < p->m; i++) {
        if (!(p->dv[i] >= 0.0) || isinf(p->dv[i])) {
            PyErr_Format(PyExc_ValueError, "depth[%d] must be finite and non-negative", i);
            goto fail;
        }
        if (p->dv[i] != 0.0)
            p->has_depth = 1;
    }
    p->start_time = start_time;
    if (opt_int64(shift_end, "shift_end", &p->has_shift_end, &p->shift_end) < 0 ||
        opt_int64(capacity, "capacity", &p->has_cap, &p->cap) < 0)
        goto fail;
    p->load0 = initial_load;
    if (brk != NULL && brk != Py_None) {
        long long e, l, d;
        if (!PyTuple_Check(brk) || !PyArg_ParseTuple(brk, "LLL", &e, &l, &d)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError,
                            "break must be None or a tuple (earliest, latest, duration) of ints");
            goto fail;
        }
        if (e > l || d < 0) {
            PyErr_SetString(PyExc_ValueError, "break: earliest after latest or negative duration");
            goto fail;
        }
        p->has_break = 1;
        p->b_earliest = e;
        p->b_latest = l;
        p->b_dur = d;
    }
    if (!(wl >= 0 && wo >= 0 && wd >= 0) || isinf(wl) || isinf(wo) || isinf(wd)) {
        PyErr_SetString(PyExc_ValueError, "weights must be finite and non-negative");
        goto fail;
    }
    p->wl = wl;
    p->wo = wo;
    p->wd = wd;
    return 0;

fail_views:
    PyBuffer_Release(&vt);
    PyBuffer_Release(&vd);
fail:
    free(nd);
    prob_free(p);
    return -1;
}

/* A route: a permutation of 0..m-1, copied into out (m ints). */
static int read_route(PyObject *obj, const Prob *p, int *out)
{
    Py_buffer v;
    if (get_view(obj, "route", 'i', 1, &v) < 0)
        return -1;
    if (v.shape[0] != p->m) {
        PyErr_Format(PyExc_ValueError, "route has %zd entries, expected %d (one per stop)",
                     v.shape[0], p->m);
        PyBuffer_Release(&v);
        return -1;
    }
    const int64_t *r = v.buf;
    char *seen = calloc((size_t)(p->m > 0 ? p->m : 1), 1);
    if (!seen) {
        PyBuffer_Release(&v);
        PyErr_NoMemory();
        return -1;
    }
    for (int k = 0; k < p->m; k++) {
        if (r[k] < 0 || r[k] >= p->m || seen[r[k]]) {
            PyErr_Format(PyExc_ValueError,
                         "route is not a permutation of the %d stops (entry %d is %lld)", p->m, k,
                         (long long)r[k]);
            free(seen);
            PyBuffer_Release(&v);
            return -1;
        }
        seen[r[k]] = 1;
        out[k] = (int)r[k];
    }
    free(seen);
    PyBuffer_Release(&v);
    return 0;
}

/* ------------------------------------------------------------------ simulation */

typedef struct {
    int64_t t; /* departure from pos (the start time at the start) */
    int pos;   /* compact node */
    int pend;  /* break still pending */
    int64_t load, D, L, O;
    double P; /* sum of dv[i] * (n-1-k) so far */
} St;

static inline St start_state(const Prob *p)
{
    St s;
    s.t = p->start_time;
    s.pos = p->m;
    s.pend = p->has_break;
    s.load = p->load0;
    s.D = s.L = s.O = 0;
    s.P = 0.0;
    return s;
}

/* Serve stop i at position k of an n-stop route (Evaluator.run's loop body). */
static inline void step(const Prob *p, St *s, int i, int k, int n)
{
    const int N = p->N;
    int64_t travel = p->tt[(size_t)s->pos * N + i];
    int64_t a = s->t + travel, avail = a;
    int64_t rd = p->ready[i], sv = p->service[i];
    if (s->pend) {
        if (a > p->b_latest) { /* too late on arrival: taken before leaving */
            int64_t bs = s->t > p->b_earliest ? s->t : p->b_earliest;
            if (bs > p->b_latest)
                s->L += bs - p->b_latest;
            a = avail = bs + p->b_dur + travel;
            s->pend = 0;
        } else {
            int64_t bs = a > p->b_earliest ? a : p->b_earliest;
            int64_t ar = a > rd ? a : rd;
            if (a >= p->b_earliest || rd - bs >= p->b_dur || ar + sv > p->b_latest) {
                avail = bs + p->b_dur;
                s->pend = 0;
            }
        }
    }
    int64_t start = avail > rd ? avail : rd;
    if (start > p->due[i])
        s->L += start - p->due[i];
    s->D += p->dm[(size_t)s->pos * N + i];
    if (p->has_cap) {
        s->load += p->dload[i];
        if (s->load > p->cap)
            s->O += s->load - p->cap;
    }
    s->t = start + sv;
    s->pos = i;
    if (p->has_depth)
        s->P += p->dv[i] * (double)(n - 1 - k);
}

/* Drive to the end node (Evaluator.run after its loop). */
static inline void end_step(const Prob *p, St *s)
{
    const int N = p->N, e = p->m + 1;
    int64_t travel = p->tt[(size_t)s->pos * N + e];
    int64_t end = s->t + travel;
    if (s->pend) {
        int64_t bs;
        if (end > p->b_latest) {
            bs = s->t > p->b_earliest ? s->t : p->b_earliest;
            end = bs + p->b_dur + travel;
        } else {
            bs = end > p->b_earliest ? end : p->b_earliest;
            end = bs + p->b_dur;
        }
        if (bs > p->b_latest)
            s->L += bs - p->b_latest;
        s->pend = 0;
    }
    s->D += p->dm[(size_t)s->pos * N + e];
    if (p->has_shift_end && end > p->shift_end)
        s->L += end - p->shift_end;
    s->t = end;
    s->pos = e;
}

/* Schedule.cost: distance + wl * lateness + wo * overload + wd * depth. */
static inline double depth_of(const Prob *p, double P, int n, int first)
{
    if (!p->has_depth || n == 0)
        return 0.0;
    if (n == 1)
        return p->dv[first];
    return P / (double)(n - 1);
}

static inline double price(const Prob *p, int64_t D, int64_t L, int64_t O, double depth)
{
    return (double)D + p->wl * (double)L + p->wo * (double)O + p->wd * depth;
}

/* ------------------------------------------------------------------ search state */

typedef struct {
    uint64_t s;
} Rng;

static inline uint64_t rng_next(Rng *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline int rng_below(Rng *g, int k) /* uniform in [0, k), k >= 1 */
{
    return (int)(rng_next(g) % (uint64_t)k);
}

typedef struct {
    const Prob *p;
    int n, fixed, K;
    int seg; /* or-opt's longest segment */
    int first; /* take the first move that gains (else the best of a stop's moves) */
    int *r, *pos, *near, *buf, *best, *queue;
    char *inq;
    int qhead, qlen;
    /* caches, per count c = 0..n of stops served */
    int64_t *T, *LD, *D, *L, *O;
    int *LC; /* late events (a stop served after its due) among the first c stops */
    int LCtot; /* ... and the end past the shift end */
    /* over the stops from position c on and the end (used where no break is pending):
     * how much earlier every service could start before one meets its ready time (SLK),
     * the least lateness of a late one (MLATE), the largest wait (WAITMAX) and the least
     * slack to due of one on time (MNL); within these a shift of the departure at c moves
     * every service by as much, and the lateness by as much per late stop */
    int64_t *SLK, *MLATE, *WAITMAX, *MNL;
    /* how much later the arrival at position c could be with no stop from c on, nor the
     * end, made late (the waits absorb part of it): exact where none was late before */
    int64_t *ABS;
    int64_t *ST, *ARR; /* per position: service start and when service could begin */
    int64_t *RD; /* RD[k]: the distance of positions 0..k driven backwards (k-1 from k, ...) */
    double *SV;  /* SV[c]: the depth of the first c stops */
    /* the move being priced keeps a block of the old route: buf[b0..b1-1] is r[bold..] */
    int b0, b1, bold;
    int64_t END; /* arrival at the end node */
    char *PD;
    double *P;
    int64_t Dtot, Ltot, Otot;
    double Ptot, cost;
    double dnorm; /* n - 1, or 1 */
    double wdn;   /* the depth weight over dnorm */
    /* clock */
    struct timespec deadline;
    int has_deadline, timed_out;
    long long evals, moves;
    long long relocated; /* stops the kicks moved to their cheapest place (relocate_forced) */
    long long mispriced; /* applied moves whose cost after the move is not the price */
} Search;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int past_deadline(Search *S)
{
    if (!S->has_deadline)
        return 0;
    if (S->timed_out)
        return 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec > S->deadline.tv_sec ||
        (ts.tv_sec == S->deadline.tv_sec && ts.tv_nsec >= S->deadline.tv_nsec))
        S->timed_out = 1;
    return S->timed_out;
}

static inline St state_at(const Search *S, int c)
{
    St s;
    s.t = S->T[c];
    s.pos = c > 0 ? S->r[c - 1] : S->p->m;
    s.pend = S->PD[c];
    s.load = S->LD[c];
    s.D = S->D[c];
    s.L = S->L[c];
    s.O = S->O[c];
    s.P = S->P[c];
    return s;
}

/* How much later the arrival at a stop can be with no stop from it on (nor the end) made
 * late, where it waits `wait` for its window, has `slack` to its due time when served, and
 * the arrival at the next position can be `after` later: its wait and what is left of the
 * rest absorb the delay (ABS in rebuild; the insertions of build_skeleton). */
static inline int64_t absorb(int64_t wait, int64_t slack, int64_t after, int64_t big)
{
    int64_t room = slack < after ? slack : after;
    int64_t a = (wait > 0 ? wait : 0) + (room > 0 ? room : 0);
    return a > big ? big : a;
}

/* Recompute the caches from count c0 on, the totals and the (exact) cost. */
static void rebuild(Search *S, int c0)
{
    const Prob *p = S->p;
    int n = S->n;
    St s = c0 == 0 ? start_state(p) : state_at(S, c0);
    int lc = S->LC[c0];
    if (c0 == 0) {
        lc = 0;
        S->LC[0] = 0;
        S->T[0] = s.t;
        S->PD[0] = (char)s.pend;
        S->LD[0] = s.load;
        S->D[0] = S->L[0] = S->O[0] = 0;
        S->P[0] = 0.0;
        S->SV[0] = 0.0;
    }
    for (int k = c0; k < n; k++) {
        S->RD[k] = k == 0 ? 0 : S->RD[k - 1] + p->dm[(size_t)S->r[k] * p->N + S->r[k - 1]];
        S->SV[k + 1] = S->SV[k] + (p->has_depth ? p->dv[S->r[k]] : 0.0);
        int64_t late_before = s.L;
        int pend_before = s.pend;
        int64_t arrival = s.t + p->tt[(size_t)s.pos * p->N + S->r[k]];
        step(p, &s, S->r[k], k, n);
        S->ST[k] = s.t - p->service[S->r[k]];
        S->ARR[k] = arrival;
        /* a stop served late (a break started late only happens while one is pending) */
        if (s.L > late_before)
            lc += 1 + pend_before;
        S->LC[k + 1] = lc;
        S->T[k + 1] = s.t;
        S->PD[k + 1] = (char)s.pend;
        S->LD[k + 1] = s.load;
        S->D[k + 1] = s.D;
        S->L[k + 1] = s.L;
        S->O[k + 1] = s.O;
        S->P[k + 1] = s.P;
    }
    int64_t late_before = s.L;
    int pend_before = s.pend;
    end_step(p, &s);
    if (s.L > late_before)
        lc += 1 + pend_before;
    S->LCtot = lc;
    S->END = s.t;
    const int64_t BIG = INT64_MAX / 4;
    S->SLK[n] = BIG;
    S->WAITMAX[n] = -BIG;
    S->MLATE[n] = S->MNL[n] = BIG;
    S->ABS[n] = BIG;
    if (p->has_shift_end) {
        if (s.t > p->shift_end)
            S->MLATE[n] = s.t - p->shift_end;
        else
            S->MNL[n] = S->ABS[n] = p->shift_end - s.t;
    }
    for (int k = n - 1; k >= 0; k--) {
        int i = S->r[k];
        int64_t slk = S->ST[k] - p->ready[i], late = S->ST[k] - p->due[i];
        int64_t wait = p->ready[i] - S->ARR[k];
        S->SLK[k] = slk < S->SLK[k + 1] ? slk : S->SLK[k + 1];
        S->WAITMAX[k] = wait > S->WAITMAX[k + 1] ? wait : S->WAITMAX[k + 1];
        S->MLATE[k] = S->MLATE[k + 1];
        S->MNL[k] = S->MNL[k + 1];
        if (late > 0 && late < S->MLATE[k])
            S->MLATE[k] = late;
        if (late <= 0 && -late < S->MNL[k])
            S->MNL[k] = -late;
        S->ABS[k] = absorb(wait, -late, S->ABS[k + 1], BIG);
    }
    S->Dtot = s.D;
    S->Ltot = s.L;
    S->Otot = s.O;
    S->Ptot = s.P;
    S->cost = price(p, s.D, s.L, s.O, depth_of(p, s.P, n, n ? S->r[0] : 0));
}

static inline double lb(const Search *S, int64_t D, int64_t L, int64_t O, double P)
{
    return (double)D + S->p->wl * (double)L + S->p->wo * (double)O + S->wdn * P;
}

/* The cost of the route with positions lo..hi replaced by buf[0..hi-lo], or INFINITY if
 * it is not below limit. */
static double eval_move_fast(Search *S, int lo, int hi, const int *buf, double limit,
                             int64_t nd)
{
    const Prob *p = S->p;
    const int n = S->n;
    /* what positions after hi add whatever the span does: their over and depth, and the
     * distance of the edges after position hi+1 */
    int64_t fD = hi + 2 <= n ? S->Dtot - S->D[hi + 2] : 0;
    int64_t fO = S->Otot - S->O[hi + 1];
    double fP = S->Ptot - S->P[hi + 1];
    /* a bound without simulating: the new distance, the prefix's lateness, the over and
     * depth outside the span (and the span's depth) */
    {
        const int len = hi - lo + 1;
        double sp = 0.0;
        if (p->has_depth)
            for (int x = 0; x < len; x++)
                sp += p->dv[buf[x]] * (double)(n - 1 - (lo + x));
        int64_t od = (hi + 2 <= n ? S->D[hi + 2] : S->Dtot) - S->D[lo];
        if (lb(S, S->Dtot - od + nd, S->L[lo], S->O[lo] + fO, S->P[lo] + sp + fP) >= limit)
            return INFINITY;
    }
    St s = state_at(S, lo);
    const int b0 = S->b0, b1 = S->b1, shift = S->bold - (lo + b0);
    for (int k = lo; k <= hi; k++) {
        step(p, &s, buf[k - lo], k, n);
        if (lb(S, s.D + fD, s.L, s.O + fO, s.P + fP) >= limit)
            return INFINITY;
        int x = k - lo;
        if (x >= b0 && x + 1 < b1 && !p->has_cap) {
            /* inside a block of the old route: once the schedule is back in step with the
             * old one at the same stop, the rest of the block is as before, only at other
             * positions (its depth), so it is added rather than simulated */
            int j = S->bold + (x - b0), e = S->bold + (b1 - b0) - 1;
            if (s.t == S->T[j + 1] && s.pend == S->PD[j + 1]) {
                s.D += S->D[e + 1] - S->D[j + 1];
                s.L += S->L[e + 1] - S->L[j + 1];
                s.P += S->P[e + 1] - S->P[j + 1] + shift * (S->SV[e + 1] - S->SV[j + 1]);
                s.t = S->T[e + 1];
                s.pend = S->PD[e + 1];
                s.pos = S->r[e];
                k = lo + b1 - 1;
                if (lb(S, s.D + fD, s.L, s.O + fO, s.P + fP) >= limit)
                    return INFINITY;
            }
        }
    }
    for (int k = hi + 1; k < n; k++) {
        step(p, &s, S->r[k], k, n);
        int c = k + 1;
        int64_t D = s.D + S->Dtot - S->D[c];
        int64_t O = s.O + S->Otot - S->O[c];
        double P = s.P + S->Ptot - S->P[c];
        if (s.t == S->T[c] && s.pend == S->PD[c]) {
            double v = lb(S, D, s.L + S->Ltot - S->L[c], O, P);
            return v < limit ? v : INFINITY;
        }
        int64_t Ls = 0;
        if (!s.pend && !S->PD[c]) {
            /* no break pending either way: the rest of the route is a chain of waits and
             * services, so a later departure is no less late at every stop downstream, and
             * an earlier one by d is at most d less late at each stop that was late */
            int64_t old = S->Ltot - S->L[c], late_n = S->LCtot - S->LC[c];
            if (s.t > S->T[c]) {
                int64_t d = s.t - S->T[c];
                if (S->WAITMAX[c] <= 0 && d <= S->MNL[c]) { /* every service d later */
                    double v = lb(S, D, s.L + old + d * late_n, O, P);
                    return v < limit ? v : INFINITY;
                }
                if (old == 0 && d <= S->ABS[c]) { /* the waits absorb it: none made late */
                    double v = lb(S, D, s.L, O, P);
                    return v < limit ? v : INFINITY;
                }
                Ls = old;
            } else {
                int64_t d = S->T[c] - s.t;
                if (old == 0 || (d <= S->SLK[c] && d <= S->MLATE[c])) { /* d earlier */
                    double v = lb(S, D, s.L + old - d * late_n, O, P);
                    if (old == 0)
                        v = lb(S, D, s.L, O, P);
                    return v < limit ? v : INFINITY;
                }
                int64_t cut = d * late_n;
                Ls = old > cut ? old - cut : 0;
            }
        }
        if (lb(S, D, s.L + Ls, O, P) >= limit)
            return INFINITY;
    }
    end_step(p, &s);
    double v = lb(S, s.D, s.L, s.O, s.P);
    return v < limit ? v : INFINITY;
}

#ifdef LS_DEBUG
/* a development build (-DLS_DEBUG) checks every priced move against a full simulation,
 * and the new distance of its span against the sum along it */
#include <stdio.h>
static double eval_move(Search *S, int lo, int hi, const int *buf, double limit, int64_t nd)
{
    double v = eval_move_fast(S, lo, hi, buf, limit, nd);
    int n = S->n;
    {
        const int N = S->p->N, len = hi - lo + 1;
        int prev = lo > 0 ? S->r[lo - 1] : S->p->m;
        int next = hi + 1 < n ? S->r[hi + 1] : S->p->m + 1;
        int64_t sum = S->p->dm[(size_t)prev * N + buf[0]] +
                      S->p->dm[(size_t)buf[len - 1] * N + next];
        for (int x = 0; x + 1 < len; x++)
            sum += S->p->dm[(size_t)buf[x] * N + buf[x + 1]];
        if (sum != nd)
            fprintf(stderr, "span distance mismatch lo=%d hi=%d sum=%lld nd=%lld\n", lo, hi,
                    (long long)sum, (long long)nd);
    }
    St s = start_state(S->p);
    int first = -1;
    for (int k = 0; k < n; k++) {
        int i = (k >= lo && k <= hi) ? buf[k - lo] : S->r[k];
        if (k == 0)
            first = i;
        step(S->p, &s, i, k, n);
    }
    end_step(S->p, &s);
    double full = price(S->p, s.D, s.L, s.O, depth_of(S->p, s.P, n, first));
    if ((isinf(v) && full < limit - 1e-6) || (!isinf(v) && fabs(v - full) > 1e-6))
        fprintf(stderr, "eval mismatch lo=%d hi=%d fast=%f full=%f limit=%f\n", lo, hi, v, full,
                limit);
    return v;
}
#else
#define eval_move eval_move_fast
#endif

static void activate(Search *S, int stop)
{
    if (S->inq[stop])
        return;
    S->inq[stop] = 1;
    S->queue[(S->qhead + S->qlen) % S->n] = stop;
    S->qlen++;
}

#ifndef ACT_W
#define ACT_W 2 /* stops activated inside each end of a changed span */
#endif
static void activate_span(Search *S, int lo, int hi)
{
    int n = S->n;
    for (int k = lo - 1; k <= lo + ACT_W && k < n; k++)
        if (k >= S->fixed && k <= hi + 1)
            activate(S, S->r[k]);
    for (int k = hi - ACT_W; k <= hi + 1 && k < n; k++)
        if (k >= S->fixed && k >= lo - 1)
            activate(S, S->r[k]);
}

static void apply(Search *S, int lo, int hi, const int *buf)
{
    for (int k = lo; k <= hi; k++) {
        S->r[k] = buf[k - lo];
        S->pos[S->r[k]] = k;
    }
    rebuild(S, lo);
    S->moves++;
}

/* The epsilon a move must gain: depth sums are added in another order than the exact
 * cost's, so gains below this are noise. */
static inline double gain_eps(double cost)
{
    return 1e-7 + 1e-12 * fabs(cost);
}

/* Try the moves that bring stop u next to its near stops; apply the first that gains. */
typedef struct {
    double v;
    int lo, hi;
} Best;

/* Price the move; keep it in S->best if it is the cheapest so far. With first improvement
 * (FIRST_IMP) the first that gains is taken at once. */
static inline int consider(Search *S, int lo, int hi, const int *buf, int64_t nd,
                           double *limit, Best *b)
{
    double v = eval_move(S, lo, hi, buf, *limit, nd);
    if (!(v < *limit))
        return 0;
    b->v = v;
    b->lo = lo;
    b->hi = hi;
    memcpy(S->best, buf, sizeof(int) * (size_t)(hi - lo + 1));
    *limit = v - gain_eps(v);
    return S->first;
}

/* The distance of positions x..y (x <= y) of the route, forwards and backwards; an edge. */
static inline int64_t fwd(const Search *S, int x, int y)
{
    return S->D[y + 1] - S->D[x + 1];
}

static inline int64_t bwd(const Search *S, int x, int y)
{
    return S->RD[y] - S->RD[x];
}

static inline int64_t edge(const Search *S, int i, int j)
{
    return S->p->dm[(size_t)i * S->p->N + j];
}

/* The nodes before position lo and after position hi (the start, the end). */
static inline int node_before(const Search *S, int lo)
{
    return lo > 0 ? S->r[lo - 1] : S->p->m;
}

static inline int node_after(const Search *S, int hi)
{
    return hi + 1 < S->n ? S->r[hi + 1] : S->p->m + 1;
}

/* Whether a move rewriting positions lo..hi, whose new edges from the node before lo to
 * the node after hi add up to nd, may gain: the bound of eval_move_fast without the span's
 * depth, so that a move is dropped before its span is written out. Counts the move. */
static inline int may_gain(Search *S, int lo, int hi, int64_t nd, double limit)
{
    S->evals++;
#ifdef LS_DEBUG
    (void)lo, (void)hi, (void)nd, (void)limit;
    return 1; /* every move priced, and checked, in full */
#else
    const int n = S->n;
    int64_t od = (hi + 2 <= n ? S->D[hi + 2] : S->Dtot) - S->D[lo];
    return lb(S, S->Dtot - od + nd, S->L[lo], S->O[lo] + S->Otot - S->O[hi + 1],
              S->P[lo] + S->Ptot - S->P[hi + 1]) < limit;
#endif
}

/* Or-opt: the segment at positions s0..s1 moved after position q (outside s0-1..s1),
 * reversed or not, rewrites positions s0..q (q > s1) or q+1..s1. The new distance from
 * the node before those positions to the node after them... */
static inline int64_t move_distance(const Search *S, int s0, int s1, int q, int rev)
{
    int sf = S->r[rev ? s1 : s0], sl = S->r[rev ? s0 : s1];
    int64_t nd = rev ? bwd(S, s0, s1) : fwd(S, s0, s1);
    if (q > s1)
        return nd + edge(S, node_before(S, s0), S->r[s1 + 1]) + fwd(S, s1 + 1, q) +
               edge(S, S->r[q], sf) + edge(S, sl, node_after(S, q));
    return nd + edge(S, node_before(S, q + 1), sf) + edge(S, sl, S->r[q + 1]) +
           fwd(S, q + 1, s0 - 1) + edge(S, S->r[s0 - 1], node_after(S, s1));
}

/* ... and those positions' new stops, written to S->buf, with the block of the old route
 * the move only shifts (S->b0, b1, bold). */
static inline void write_move(Search *S, int s0, int s1, int q, int rev)
{
    int *buf = S->buf, w = 0, L = s1 - s0 + 1;
    if (q > s1) {
        S->b0 = 0;
        S->b1 = q - s1;
        S->bold = s1 + 1;
        for (int k = s1 + 1; k <= q; k++)
            buf[w++] = S->r[k];
        for (int x = 0; x < L; x++)
            buf[w++] = S->r[rev ? s1 - x : s0 + x];
    } else {
        S->b0 = L;
        S->b1 = L + (s0 - 1 - q);
        S->bold = q + 1;
        for (int x = 0; x < L; x++)
            buf[w++] = S->r[rev ? s1 - x : s0 + x];
        for (int k = q + 1; k <= s0 - 1; k++)
            buf[w++] = S->r[k];
    }
}

/* Apply the move in best (if any) for stop u: check its price against the exact cost
 * after it, and wake the stops around it; whether there was one. */
static int take_move(Search *S, const Best *best, int u)
{
    if (best->lo < 0)
        return 0;
    apply(S, best->lo, best->hi, S->best);
    if (fabs(S->cost - best->v) > 1e-6 * (1.0 + fabs(best->v)))
        S->mispriced++; /* the exact cost after the move is not what it was priced at */
    activate_span(S, best->lo, best->hi);
    activate(S, u);
    return 1;
}

/* Try the moves that bring stop u next to its near stops; apply the one that gains most
 * (or the first that gains). */
static int improve_stop(Search *S, int u)
{
    const int n = S->n, f = S->fixed;
    int *buf = S->buf;
    int a = S->pos[u];
    if (a < f)
        return 0;
    double limit = S->cost - gain_eps(S->cost);
    Best best = {INFINITY, -1, -1};
    for (int j = 0; j < S->K; j++) {
        int v = S->near[(size_t)u * S->K + j];
        int b = S->pos[v];
        int lo = a < b ? a : b, hi = a < b ? b : a;
        /* 2-opt: r[lo] followed by r[hi], reversing what lies between */
        if (hi - lo >= 2) {
            /* reverse lo+1..hi */
            if (lo + 1 >= f) {
                int64_t nd = edge(S, S->r[lo], S->r[hi]) + bwd(S, lo + 1, hi) +
                             edge(S, S->r[lo + 1], node_after(S, hi));
                if (may_gain(S, lo + 1, hi, nd, limit)) {
                    S->b0 = S->b1 = 0;
                    for (int k = lo + 1; k <= hi; k++)
                        buf[k - lo - 1] = S->r[hi - (k - lo - 1)];
                    if (consider(S, lo + 1, hi, buf, nd, &limit, &best))
                        goto done;
                }
            }
            /* reverse lo..hi-1 */
            if (lo >= f) {
                int64_t nd = edge(S, node_before(S, lo), S->r[hi - 1]) + bwd(S, lo, hi - 1) +
                             edge(S, S->r[lo], S->r[hi]);
                if (may_gain(S, lo, hi - 1, nd, limit)) {
                    S->b0 = S->b1 = 0;
                    for (int k = lo; k <= hi - 1; k++)
                        buf[k - lo] = S->r[hi - 1 - (k - lo)];
                    if (consider(S, lo, hi - 1, buf, nd, &limit, &best))
                        goto done;
                }
            }
        }
        /* or-opt: a segment of L stops that starts (or, with SEG_ENDS, ends) at u, moved
         * after position q (q = b: after v; q = b-1: before v), either way round */
        for (int L = 1; L <= S->seg; L++) {
            for (int anchor = 0; anchor < (SEG_ENDS && L > 1 ? 2 : 1); anchor++) {
                int s0 = anchor ? a - L + 1 : a, s1 = s0 + L - 1;
                if (s0 < f || s1 >= n || (b >= s0 && b <= s1))
                    continue;
                for (int side = 0; side < 2; side++) {
                    int q = side == 0 ? b : b - 1;
                    if (q < f - 1 || (q >= s0 - 1 && q <= s1))
                        continue;
                    for (int rev = 0; rev < (L > 1 ? 2 : 1); rev++) {
                        int64_t nd = move_distance(S, s0, s1, q, rev);
                        int slo = q > s1 ? s0 : q + 1, shi = q > s1 ? q : s1;
                        if (!may_gain(S, slo, shi, nd, limit))
                            continue;
                        write_move(S, s0, s1, q, rev);
                        if (consider(S, slo, shi, buf, nd, &limit, &best))
                            goto done;
                    }
                }
            }
        }
        /* swap u with the stop after v (v then u) or before v (u then v) */
        for (int side = 0; side < 2; side++) {
            int w = side == 0 ? b + 1 : b - 1;
            if (w < f || w >= n || w == a)
                continue;
            int slo = a < w ? a : w, shi = a < w ? w : a;
            int x = S->r[slo], y = S->r[shi];
            int64_t nd = edge(S, node_before(S, slo), y) + edge(S, x, node_after(S, shi));
            if (shi == slo + 1)
                nd += edge(S, y, x);
            else
                nd += edge(S, y, S->r[slo + 1]) + fwd(S, slo + 1, shi - 1) +
                      edge(S, S->r[shi - 1], x);
            if (!may_gain(S, slo, shi, nd, limit))
                continue;
            S->b0 = 1;
            S->b1 = shi - slo;
            S->bold = slo + 1;
            for (int k = slo; k <= shi; k++)
                buf[k - slo] = S->r[k];
            buf[a - slo] = S->r[w];
            buf[w - slo] = S->r[a];
            if (consider(S, slo, shi, buf, nd, &limit, &best))
                goto done;
        }
    }
done:
    return take_move(S, &best, u);
}

/* First-improvement descent over the active stops (don't-look bits). */
static void descend(Search *S)
{
    while (S->qlen > 0) {
        if (past_deadline(S))
            return;
        int u = S->queue[S->qhead];
        S->qhead = (S->qhead + 1) % S->n;
        S->qlen--;
        S->inq[u] = 0;
        if (improve_stop(S, u))
            activate(S, u);
    }
}

static void activate_all(Search *S)
{
    for (int k = S->fixed; k < S->n; k++)
        activate(S, S->r[k]);
}

/* Move stop u to the cheapest place next to one of its near stops more than KICK_GAP
 * places from its own, even where that costs more; whether it moved. */
static int relocate_forced(Search *S, int u)
{
    const int f = S->fixed;
    int a = S->pos[u];
    if (a < f)
        return 0;
    double limit = INFINITY;
    Best best = {INFINITY, -1, -1};
    for (int j = 0; j < S->K; j++) { /* every place priced: the cheapest is taken */
        int b = S->pos[S->near[(size_t)u * S->K + j]];
        for (int side = 0; side < 2; side++) {
            int q = side == 0 ? b : b - 1; /* u goes after position q */
            if (q < f - 1 || (q >= a - 1 - KICK_GAP && q <= a + KICK_GAP))
                continue;
            int64_t nd = move_distance(S, a, a, q, 0);
            int slo = q > a ? a : q + 1, shi = q > a ? q : a;
            if (!may_gain(S, slo, shi, nd, limit)) /* than the cheapest place found so far */
                continue;
            write_move(S, a, a, q, 0);
            consider(S, slo, shi, S->buf, nd, &limit, &best);
        }
    }
    S->relocated += best.lo >= 0;
    return take_move(S, &best, u);
}

/* A kick (KICK_KIND): two adjacent segments exchanged, or a run of stops each moved to its
 * cheapest place (relocate_forced), or a random segment moved next to a near stop. */
static void kick(Search *S, Rng *g)
{
    const int n = S->n, f = S->fixed;
    int *buf = S->buf;
    int movable = n - f;
    if (movable < 3)
        return;
    int kind = KICK_KIND;
    if (kind == 2)
        kind = rng_below(g, 2);
    else if (kind == 4)
        kind = rng_below(g, 2) ? 3 : 0;
    if (kind == 3) {
        /* a run of up to KICK_MAX stops, each moved in a random order */
        int L = 1 + rng_below(g, KICK_MAX);
        if (L > movable)
            L = movable;
        int a = f + rng_below(g, movable - L + 1);
        int run[KICK_MAX];
        for (int x = 0; x < L; x++)
            run[x] = S->r[a + x];
        for (int x = L - 1; x > 0; x--) {
            int y = rng_below(g, x + 1), t = run[x];
            run[x] = run[y];
            run[y] = t;
        }
        for (int x = 0; x < L; x++)
            relocate_forced(S, run[x]);
    } else if (kind == 0) {
        int l1 = 1 + rng_below(g, KICK_MAX), l2 = 1 + rng_below(g, KICK_MAX);
        if (l1 + l2 > movable) {
            l1 = 1 + rng_below(g, movable - 1);
            l2 = movable - l1;
            if (l2 > 1)
                l2 = 1 + rng_below(g, l2);
        }
        int a = f + rng_below(g, movable - l1 - l2 + 1);
        int w = 0;
        for (int k = a + l1; k < a + l1 + l2; k++)
            buf[w++] = S->r[k];
        for (int k = a; k < a + l1; k++)
            buf[w++] = S->r[k];
        apply(S, a, a + l1 + l2 - 1, buf);
        activate_span(S, a, a + l1 + l2 - 1);
        activate(S, S->r[a + l2 - 1]);
        activate(S, S->r[a + l2]);
    } else {
        int a = f + rng_below(g, movable);
        int L = 1 + rng_below(g, S->seg);
        if (a + L > n)
            L = n - a;
        int u = S->r[a];
        int v = S->near[(size_t)u * S->K + rng_below(g, S->K)];
        int b = S->pos[v];
        int q = rng_below(g, 2) ? b : b - 1;
        if (q < f - 1 || (q >= a - 1 && q <= a + L - 1))
            return;
        int rev = L > 1 && rng_below(g, 2);
        int slo, shi, w = 0;
        if (q > a + L - 1) {
            slo = a;
            shi = q;
            for (int k = a + L; k <= q; k++)
                buf[w++] = S->r[k];
            for (int x = 0; x < L; x++)
                buf[w++] = S->r[rev ? a + L - 1 - x : a + x];
        } else {
            slo = q + 1;
            shi = a + L - 1;
            for (int x = 0; x < L; x++)
                buf[w++] = S->r[rev ? a + L - 1 - x : a + x];
            for (int k = q + 1; k <= a - 1; k++)
                buf[w++] = S->r[k];
        }
        apply(S, slo, shi, buf);
        activate_span(S, slo, shi);
        for (int x = 0; x < L; x++)
            activate(S, buf[(q > a + L - 1) ? (shi - slo - x) : x]);
    }
}

/* The K stops nearest each stop by travel time (either way), ties by index. */
typedef struct {
    int64_t d;
    int j;
} Cand;

static int cand_cmp(const void *x, const void *y)
{
    const Cand *a = x, *b = y;
    if (a->d != b->d)
        return a->d < b->d ? -1 : 1;
    return a->j - b->j;
}

/* How well j can follow i: the travel time, plus a fifth of the wait when j's window
 * opens after i's closes and the time warp when it closes before i's opens (the time
 * that would be late). */
static int64_t proximity(const Prob *p, int i, int j)
{
    int64_t t = p->tt[(size_t)i * p->N + j];
    int64_t wait = p->ready[j] - t - p->service[i] - p->due[i];
    int64_t warp = p->ready[i] + p->service[i] + t - p->due[j];
    return t + (wait > 0 ? wait / 5 : 0) + (warp > 0 ? warp : 0);
}

static int build_near(Search *S)
{
    const Prob *p = S->p;
    int n = S->n, K = S->K;
    Cand *c = malloc(sizeof(Cand) * (size_t)(n > 1 ? n - 1 : 1));
    if (!c)
        return -1;
    for (int i = 0; i < n; i++) {
        int w = 0;
        for (int j = 0; j < n; j++) {
            if (j == i)
                continue;
            int64_t x = proximity(p, i, j), y = proximity(p, j, i);
            c[w].d = x < y ? x : y;
            c[w].j = j;
            w++;
        }
        qsort(c, (size_t)w, sizeof(Cand), cand_cmp);
        for (int k = 0; k < K; k++)
            S->near[(size_t)i * K + k] = c[k].j;
    }
    free(c);
    return 0;
}

typedef struct {
    long long iterations, evals, moves, improvements, mispriced, relocated;
    double seconds;
    int timed_out;
} Stats;

/* The iterated local search; route (n ints) is the warm start in, the best route out. */
static int run_search(const Prob *p, int *route, int fixed, uint64_t seed, double time_limit,
                      long long max_iters, long long patience, int K, double accept,
                      double accept_start, int rule, int seg, int seg_after, double *out_cost,
                      Stats *st)
{
    Search S;
    memset(&S, 0, sizeof(S));
    int n = p->m;
    double t0 = now_s();
    S.p = p;
    S.n = n;
    S.fixed = fixed;
    S.seg = seg;
    S.K = K < n - 1 ? K : n - 1;
    if (S.K < 0)
        S.K = 0;
    S.dnorm = n > 1 ? (double)(n - 1) : 1.0;
    S.wdn = p->wd / S.dnorm;
    size_t n1 = (size_t)n + 1;
    S.r = malloc(sizeof(int) * (n1));
    S.pos = malloc(sizeof(int) * (n1));
    S.buf = malloc(sizeof(int) * (n1));
    S.best = malloc(sizeof(int) * (n1));
    S.queue = malloc(sizeof(int) * (n1));
    S.inq = calloc(n1, 1);
    S.near = malloc(sizeof(int) * ((size_t)n * (size_t)(S.K > 0 ? S.K : 1) + 1));
    S.T = malloc(sizeof(int64_t) * n1);
    S.LD = malloc(sizeof(int64_t) * n1);
    S.D = malloc(sizeof(int64_t) * n1);
    S.L = malloc(sizeof(int64_t) * n1);
    S.O = malloc(sizeof(int64_t) * n1);
    S.LC = malloc(sizeof(int) * n1);
    S.SLK = malloc(sizeof(int64_t) * n1);
    S.MLATE = malloc(sizeof(int64_t) * n1);
    S.WAITMAX = malloc(sizeof(int64_t) * n1);
    S.MNL = malloc(sizeof(int64_t) * n1);
    S.ABS = malloc(sizeof(int64_t) * n1);
    S.ST = malloc(sizeof(int64_t) * n1);
    S.ARR = malloc(sizeof(int64_t) * n1);
    S.RD = malloc(sizeof(int64_t) * n1);
    S.SV = malloc(sizeof(double) * n1);
    S.PD = malloc(n1);
    S.P = malloc(sizeof(double) * n1);
    int *best = malloc(sizeof(int) * n1), *cur = malloc(sizeof(int) * n1);
    int rc = -1;
    if (!S.r || !S.pos || !S.buf || !S.best || !S.queue || !S.inq || !S.near || !S.T || !S.LD || !S.D ||
        !S.L || !S.O || !S.LC || !S.SLK || !S.MLATE || !S.WAITMAX || !S.MNL || !S.ABS || !S.RD || !S.SV || !S.ST ||
        !S.ARR || !S.PD || !S.P || !best || !cur)
        goto done;
    if (time_limit > 0) {
        double end = t0 + time_limit;
        S.has_deadline = 1;
        S.deadline.tv_sec = (time_t)floor(end);
        S.deadline.tv_nsec = (long)((end - floor(end)) * 1e9);
        if (S.deadline.tv_nsec >= 1000000000L) {
            S.deadline.tv_sec++;
            S.deadline.tv_nsec -= 1000000000L;
        }
    }
    memcpy(S.r, route, sizeof(int) * (size_t)n);
    for (int k = 0; k < n; k++)
        S.pos[S.r[k]] = k;
    rebuild(&S, 0);
    double best_cost = S.cost, cur_cost = S.cost;
    memcpy(best, S.r, sizeof(int) * (size_t)n);
    if (n - fixed >= 2 && S.K > 0) {
        if (build_near(&S) < 0)
            goto done;
        activate_all(&S);
        S.first = (rule & 1) != 0;
        descend(&S);
        if (S.cost < best_cost) {
            best_cost = S.cost;
            memcpy(best, S.r, sizeof(int) * (size_t)n);
        }
        if ((rule & 8) && !S.timed_out) {
            /* a second first descent from the warm start, by the other rule; the cheaper
             * local optimum is where the kicks start */
            memcpy(cur, S.r, sizeof(int) * (size_t)n);
            double first_cost = S.cost;
            memcpy(S.r, route, sizeof(int) * (size_t)n);
            for (int k = 0; k < n; k++)
                S.pos[S.r[k]] = k;
            rebuild(&S, 0);
            S.first = !S.first;
            activate_all(&S);
            descend(&S);
            if (S.cost < best_cost) {
                best_cost = S.cost;
                memcpy(best, S.r, sizeof(int) * (size_t)n);
            }
            if (!(S.cost < first_cost)) {
                memcpy(S.r, cur, sizeof(int) * (size_t)n);
                for (int k = 0; k < n; k++)
                    S.pos[S.r[k]] = k;
                rebuild(&S, 0);
                S.qlen = 0;
                S.qhead = 0;
                memset(S.inq, 0, (size_t)n);
            }
        }
        if (seg_after > 0)
            S.seg = seg_after;
        S.first = (rule & 2) != 0;
        cur_cost = S.cost;
        memcpy(cur, S.r, sizeof(int) * (size_t)n);
        /* the seed is hashed first: consecutive seeds as start states would be one
         * stream shifted by a few draws (splitmix64 adds a constant per draw) */
        Rng g = {seed ^ 0x632BE59BD9B4E019ULL};
        g.s = rng_next(&g);
        long long since = 0;
        while (!S.timed_out && (max_iters < 0 || st->iterations < max_iters) &&
               (patience < 0 || since < patience) && n - fixed >= 3) {
            if (past_deadline(&S))
                break;
            st->iterations++;
            int kicks = 1 + rng_below(&g, KICKS_MAX);
            if (rule & 4)
                S.first = (int)(rng_next(&g) & 1);
            for (int x = 0; x < kicks; x++)
                kick(&S, &g);
            descend(&S);
            if (S.timed_out && S.cost >= cur_cost) {
                /* interrupted mid-descent: keep nothing of it unless it gained */
                break;
            }
            if (S.cost < best_cost - gain_eps(best_cost)) {
                best_cost = S.cost;
                memcpy(best, S.r, sizeof(int) * (size_t)n);
                since = 0;
                st->improvements++;
            } else {
                since++;
            }
            double acc = accept;
            if (accept_start >= 0.0) {
                double left = max_iters > 0 ? 1.0 - (double)st->iterations / (double)max_iters
                              : time_limit > 0 ? 1.0 - (now_s() - t0) / time_limit
                                               : 0.0;
                if (left > 0.0)
                    acc = accept + (accept_start - accept) * pow(left, ACCEPT_DECAY);
            }
            if (S.cost <= cur_cost || S.cost <= best_cost + acc * best_cost) {
                cur_cost = S.cost;
                memcpy(cur, S.r, sizeof(int) * (size_t)n);
            } else {
                memcpy(S.r, cur, sizeof(int) * (size_t)n);
                for (int k = 0; k < n; k++)
                    S.pos[S.r[k]] = k;
                rebuild(&S, 0);
                S.qlen = 0;
                S.qhead = 0;
                memset(S.inq, 0, (size_t)n);
            }
        }
    }
    /* the best, priced exactly as schedule.py does */
    memcpy(S.r, best, sizeof(int) * (size_t)n);
    rebuild(&S, 0);
    memcpy(route, best, sizeof(int) * (size_t)n);
    *out_cost = S.cost;
    rc = 0;
done:
    st->evals = S.evals;
    st->moves = S.moves;
    st->relocated = S.relocated;
    st->mispriced = S.mispriced;
    st->timed_out = S.timed_out;
    st->seconds = now_s() - t0;
    free(S.r);
    free(S.pos);
    free(S.buf);
    free(S.best);
    free(S.queue);
    free(S.inq);
    free(S.near);
    free(S.T);
    free(S.LD);
    free(S.D);
    free(S.L);
    free(S.O);
    free(S.LC);
    free(S.SLK);
    free(S.MLATE);
    free(S.WAITMAX);
    free(S.MNL);
    free(S.ABS);
    free(S.ST);
    free(S.ARR);
    free(S.RD);
    free(S.SV);
    free(S.PD);
    free(S.P);
    free(best);
    free(cur);
    return rc;
}

/* ------------------------------------------------------------------ constructions */

/* The greedy's two constructions (edge/sequencer/greedy.py: _insertion and
 * _nearest_neighbour), step for step and with the same ties, so that they give the same
 * routes; both schedule without the break, as the Python ones do. */

static const Prob *sort_prob; /* for qsort's comparator; set and used under the GIL */

static int due_cmp(const void *x, const void *y)
{
    const Prob *p = sort_prob;
    int i = *(const int *)x, j = *(const int *)y;
    if (p->due[i] != p->due[j])
        return p->due[i] < p->due[j] ? -1 : 1;
    /* farther from the start first */
    int64_t di = p->dm[(size_t)p->m * p->N + i], dj = p->dm[(size_t)p->m * p->N + j];
    if (di != dj)
        return di > dj ? -1 : 1;
    return i < j ? -1 : (i > j);
}

/* Sequential cheapest insertion after the first `fixed` stops of route: the other stops by
 * due time (order == NULL) or in order's order, each where it adds the least distance
 * without making itself or a later stop late, else where it is least late. out: m ints. */
static int build_insertion(const Prob *p, const int *route, int fixed, const int *order,
                           int *out)
{
    const int m = p->m, N = p->N, e = m + 1;
    const int64_t end_limit = p->has_shift_end ? p->shift_end : ((int64_t)1 << 62);
    const double big = (double)((int64_t)1 << 62);
    int *todo = malloc(sizeof(int) * (size_t)(m + 1));
    int64_t *dep = malloc(sizeof(int64_t) * (size_t)(m + 2));
    int64_t *latest = malloc(sizeof(int64_t) * (size_t)(m + 2));
    int64_t *now = malloc(sizeof(int64_t) * (size_t)(m + 2));
    int64_t *behind = malloc(sizeof(int64_t) * (size_t)(m + 2));
    char *placed = calloc((size_t)m + 1, 1);
    int rc = -1;
    if (!todo || !dep || !latest || !now || !behind || !placed)
        goto done;
    int len = 0, nt = 0;
    for (int k = 0; k < fixed; k++) {
        out[len++] = route[k];
        placed[route[k]] = 1;
    }
    if (order) {
        for (int k = 0; k < m; k++)
            if (!placed[order[k]])
                todo[nt++] = order[k];
    } else {
        for (int i = 0; i < m; i++)
            if (!placed[i])
                todo[nt++] = i;
        sort_prob = p;
        qsort(todo, (size_t)nt, sizeof(int), due_cmp);
    }
    for (int x = 0; x < nt; x++) {
        /* departures from each position (the start at 0) and the latest service start at
         * each position that keeps every later window and the shift end */
        int64_t t = p->start_time;
        int pos = m;
        dep[0] = t;
        for (int k = 0; k < len; k++) {
            int i = out[k];
            int64_t a = t + p->tt[(size_t)pos * N + i];
            t = (a > p->ready[i] ? a : p->ready[i]) + p->service[i];
            dep[k + 1] = t;
            pos = i;
        }
        latest[len] = end_limit;
        for (int k = len - 1; k >= 0; k--) {
            int i = out[k], nx = k + 1 < len ? out[k + 1] : e;
            int64_t l = latest[k + 1] - p->tt[(size_t)i * N + nx] - p->service[i];
            latest[k] = p->due[i] < l ? p->due[i] : l;
        }
        int u = todo[x];
        int bestk = -1;
        double best = 0.0;
        for (int k = fixed; k <= len; k++) { /* positions that keep every window */
            int prev = k > 0 ? out[k - 1] : m, nx = k < len ? out[k] : e;
            int64_t su = dep[k] + p->tt[(size_t)prev * N + u];
            if (su < p->ready[u])
                su = p->ready[u];
            int64_t sn = su + p->service[u] + p->tt[(size_t)u * N + nx];
            int64_t rn = k < len ? p->ready[nx] : 0;
            if (sn < rn)
                sn = rn;
            if (su > p->due[u] || sn > latest[k])
                continue;
            double added = (double)(p->dm[(size_t)prev * N + u] + p->dm[(size_t)u * N + nx] -
                                    p->dm[(size_t)prev * N + nx]);
            if (bestk < 0 || added < best) {
                bestk = k;
                best = added;
            }
        }
        if (bestk < 0) { /* late wherever it goes: least lateness, then least distance */
            for (int k = 0; k < len; k++)
                now[k] = dep[k + 1] - p->service[out[k]];
            now[len] = dep[len] + p->tt[(size_t)(len > 0 ? out[len - 1] : m) * N + e];
            behind[len + 1] = 0;
            behind[len] = now[len] > end_limit;
            for (int k = len - 1; k >= 0; k--)
                behind[k] = behind[k + 1] + (now[k] > p->due[out[k]]);
            for (int k = 0; k <= len; k++) {
                double score;
                if (k < fixed) {
                    score = big;
                } else {
                    int prev = k > 0 ? out[k - 1] : m, nx = k < len ? out[k] : e;
                    int64_t su = dep[k] + p->tt[(size_t)prev * N + u];
                    if (su < p->ready[u])
                        su = p->ready[u];
                    int64_t sn = su + p->service[u] + p->tt[(size_t)u * N + nx];
                    int64_t rn = k < len ? p->ready[nx] : 0;
                    if (sn < rn)
                        sn = rn;
                    int64_t pushed = sn - now[k] > 0 ? (sn - now[k]) * behind[k] : 0;
                    int64_t own = su - p->due[u] > 0 ? su - p->due[u] : 0;
                    int64_t added = p->dm[(size_t)prev * N + u] + p->dm[(size_t)u * N + nx] -
                                    p->dm[(size_t)prev * N + nx];
                    score = (double)(own + pushed) * p->wl + (double)added;
                }
                if (bestk < 0 || score < best) {
                    bestk = k;
                    best = score;
                }
            }
        }
        memmove(out + bestk + 1, out + bestk, sizeof(int) * (size_t)(len - bestk));
        out[bestk] = u;
        len++;
    }
    rc = 0;
done:
    free(todo);
    free(dep);
    free(latest);
    free(now);
    free(behind);
    free(placed);
    return rc;
}

/* Time-oriented nearest neighbour after the first `fixed` stops of route: next is the stop
 * cheapest to serve from here (distance, wait, lateness at the lateness weight, plus
 * urgency per second of slack to its due time); ties to the lower position. */
static int build_nearest(const Prob *p, const int *route, int fixed, double urgency, int *out)
{
    const int m = p->m, N = p->N;
    char *done = calloc((size_t)m + 1, 1);
    if (!done)
        return -1;
    int64_t t = p->start_time;
    int pos = m, len = 0;
    for (int k = 0; k < fixed; k++) {
        int i = route[k];
        int64_t a = t + p->tt[(size_t)pos * N + i];
        t = (a > p->ready[i] ? a : p->ready[i]) + p->service[i];
        pos = i;
        out[len++] = i;
        done[i] = 1;
    }
    while (len < m) {
        int bi = -1;
        double best = 0.0;
        int64_t bstart = 0;
        for (int i = 0; i < m; i++) {
            if (done[i])
                continue;
            int64_t a = t + p->tt[(size_t)pos * N + i];
            int64_t start = a > p->ready[i] ? a : p->ready[i];
            int64_t slack = p->due[i] - start;
            double score = (double)(p->dm[(size_t)pos * N + i] + (start - a)) +
                           (slack >= 0 ? urgency * (double)slack : -p->wl * (double)slack);
            if (bi < 0 || score < best) {
                bi = i;
                best = score;
                bstart = start;
            }
        }
        done[bi] = 1;
        out[len++] = bi;
        t = bstart + p->service[bi];
        pos = bi;
    }
    free(done);
    return 0;
}


/* ------------------------------------------------------------------ beam search */

/* A route built forwards in time, keeping the `width` cheapest partial routes of each
 * length: each grows by the BEAM_NEXT unserved stops whose service could start soonest
 * (looked for in the order of ready times, up to one that opens after the last of those)
 * and the BEAM_URGENT due soonest, and is judged by its cost so far (the search's
 * simulation: the break, capacity, depth) plus the lateness already certain when it
 * leaves its last stop: that of every unserved stop due by then, and of the end past the
 * shift end (a stop due soonest that is already late is not charged its own lateness in
 * the ranking: see build_beam). Of the partial routes with the same stops and the same last stop only the
 * cheapest is kept. On a day of narrow windows the stops' order is mostly the time's, and
 * the beam finds much of it: 50 wide, 0.7 % above the best route known on the clustered
 * 200-stop Solomon-derived day (C2_2_1), where the greedy's insertion is 34 % above and the
 * search from it stays 3-5 % above. On wide windows it is no better than the greedy's. */

#define BEAM_WIDTH_LIMIT 10000 /* the widest beam accepted */
#ifndef BEAM_NEXT
#define BEAM_NEXT 8 /* stops whose service could start soonest, tried after each route */
#endif
#ifndef BEAM_URGENT
#define BEAM_URGENT 3 /* and those due soonest */
#endif

typedef struct {
    int parent, stop;
    St s;
} Kid;

typedef struct {
    double score;
    int kid;
} Rank;

static inline int rank_less(const Rank *a, const Rank *b)
{
    return a->score < b->score || (a->score == b->score && a->kid < b->kid);
}

/* Reorder r[0..n-1] so that its k first are the k least (in no order): quickselect. */
static void select_least(Rank *r, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1 && k > lo && k < hi) {
        size_t mid = lo + (hi - lo) / 2;
        /* the median of three as the pivot, moved to the end */
        Rank *a = &r[lo], *b = &r[mid], *c = &r[hi - 1], t;
        Rank *m = rank_less(a, b) ? (rank_less(b, c) ? b : (rank_less(a, c) ? c : a))
                                  : (rank_less(a, c) ? a : (rank_less(b, c) ? c : b));
        t = *m; *m = *c; *c = t;
        Rank pivot = *c;
        size_t store = lo;
        for (size_t x = lo; x < hi - 1; x++)
            if (rank_less(&r[x], &pivot)) {
                t = r[x]; r[x] = r[store]; r[store] = t;
                store++;
            }
        t = r[store]; r[store] = r[hi - 1]; r[hi - 1] = t;
        if (store == k || store + 1 == k)
            return;
        if (store < k)
            lo = store + 1;
        else
            hi = store;
    }
}

typedef struct {
    int64_t due;
    int i;
} DueOf;

static int dueof_cmp(const void *x, const void *y)
{
    const DueOf *a = x, *b = y;
    if (a->due != b->due)
        return a->due < b->due ? -1 : 1;
    return a->i - b->i;
}

static inline int is_set(const uint64_t *v, int i)
{
    return (int)((v[i >> 6] >> (i & 63)) & 1U);
}

static inline void set_bit(uint64_t *v, int i)
{
    v[i >> 6] |= 1ULL << (i & 63);
}

/* The first place from d on in order whose stop is not in v. */
static inline int first_unset(const DueOf *order, int d, int m, const uint64_t *v)
{
    while (d < m && is_set(v, order[d].i))
        d++;
    return d;
}

/* The beam search from the first `fixed` stops of route, over the stops skip (if given)
 * does not mark; out: as many ints (m if skip is NULL). */
static int build_beam(const Prob *p, const int *route, int fixed, int width, const char *skip,
                      int *out)
{
    const int m = p->m, N = p->N, e = m + 1, words = (m + 63) / 64 + 1;
    const int fan = BEAM_NEXT + BEAM_URGENT;
    int B = width, rc = -1;
    size_t kids_max = (size_t)B * (size_t)fan, tsize = 1;
    while (tsize < 2 * kids_max)
        tsize <<= 1;
    DueOf *dorder = malloc(sizeof(DueOf) * (size_t)(m + 1));
    uint64_t *zob = malloc(sizeof(uint64_t) * (size_t)(2 * m + 1));
    St *cs = malloc(sizeof(St) * (size_t)B), *ns = malloc(sizeof(St) * (size_t)B);
    uint64_t *cv = calloc((size_t)B * (size_t)words, sizeof(uint64_t));
    uint64_t *nv = calloc((size_t)B * (size_t)words, sizeof(uint64_t));
    uint64_t *ch = malloc(sizeof(uint64_t) * (size_t)B), *nh = malloc(sizeof(uint64_t) * (size_t)B);
    int *cd = malloc(sizeof(int) * (size_t)B), *nd = malloc(sizeof(int) * (size_t)B);
    int *cr = malloc(sizeof(int) * (size_t)B), *nr = malloc(sizeof(int) * (size_t)B);
    DueOf *rorder = malloc(sizeof(DueOf) * (size_t)(m + 1)); /* by ready time */
    int *hp = malloc(sizeof(int) * (size_t)(m + 1) * (size_t)B);
    int *hs = malloc(sizeof(int) * (size_t)(m + 1) * (size_t)B);
    Kid *kids = malloc(sizeof(Kid) * kids_max);
    Rank *rank = malloc(sizeof(Rank) * kids_max);
    int64_t *ud = malloc(sizeof(int64_t) * (size_t)(m + 1)), *us = malloc(sizeof(int64_t) * (size_t)(m + 2));
    uint64_t *table = malloc(sizeof(uint64_t) * tsize);
    int *place = malloc(sizeof(int) * tsize);
    if (!dorder || !rorder || !cr || !nr || !zob || !cs || !ns || !cv || !nv || !ch || !nh || !cd || !nd || !hp || !hs ||
        !kids || !rank || !ud || !us || !table || !place)
        goto done;
    for (int i = 0; i < m; i++) {
        dorder[i].due = p->due[i];
        dorder[i].i = i;
    }
    qsort(dorder, (size_t)m, sizeof(DueOf), dueof_cmp);
    for (int i = 0; i < m; i++) {
        rorder[i].due = p->ready[i];
        rorder[i].i = i;
    }
    qsort(rorder, (size_t)m, sizeof(DueOf), dueof_cmp);
    Rng g = {0x9E3779B97F4A7C15ULL};
    for (int i = 0; i < 2 * m; i++)
        zob[i] = rng_next(&g) | 1U;
    /* the first state: the kept stops served */
    int nb = 1;
    cs[0] = start_state(p);
    ch[0] = 0;
    for (int k = 0; k < fixed; k++) {
        int i = route[k];
        step(p, &cs[0], i, k, m);
        set_bit(cv, i);
        ch[0] ^= zob[i];
        hp[(size_t)k * B] = 0;
        hs[(size_t)k * B] = i;
    }
    int total = m; /* the stops the route will have */
    for (int i = 0; skip && i < m; i++)
        if (skip[i] && !is_set(cv, i)) {
            set_bit(cv, i); /* left out: as if served, in every state */
            total--;
        }
    cd[0] = first_unset(dorder, 0, m, cv);
    cr[0] = first_unset(rorder, 0, m, cv);
    for (int level = fixed; level < total; level++) {
        size_t nk = 0;
        for (int b = 0; b < nb; b++) {
            const St *ps = &cs[b];
            const uint64_t *vis = cv + (size_t)b * words;
            int cand[BEAM_NEXT + BEAM_URGENT], nc = 0;
            int64_t key[BEAM_NEXT];
            /* the BEAM_NEXT soonest starts (ties by ready time, then index): in the order
             * of ready times, up to one that opens after the last of those */
            for (int d = cr[b]; d < m; d++) {
                int i = rorder[d].i;
                if (nc == BEAM_NEXT && p->ready[i] >= key[nc - 1])
                    break;
                if (is_set(vis, i))
                    continue;
                int64_t a = ps->t + p->tt[(size_t)ps->pos * N + i];
                int64_t k = a > p->ready[i] ? a : p->ready[i];
                if (nc == BEAM_NEXT && k >= key[nc - 1])
                    continue;
                int x = nc < BEAM_NEXT ? nc++ : nc - 1;
                while (x > 0 && key[x - 1] > k) {
                    key[x] = key[x - 1];
                    cand[x] = cand[x - 1];
                    x--;
                }
                key[x] = k;
                cand[x] = i;
            }
            int soon = nc;
            /* the unserved stops due before tmax, the latest departure to the soonest stops
             * (the urgent ones are added after), in order, and their sums. A stop due
             * soonest that is reached after tmax is charged neither the lateness of the stops
             * due between tmax and its departure nor, where it is due after tmax, its own in the
             * ranking (its cost so far carries it): a stop already late is then served at
             * once rather than put off, which a ranking by what is certain otherwise does,
             * as putting it off costs every partial route alike. Counting both measured
             * worse on the van days (windows first, eight days a size, gap to the best
             * found: 2.34 % against 1.37 % at 200 stops, 0.98 % against 0.82 % at 100). */
            int64_t tmax = ps->t;
            for (int x = 0; x < nc; x++) {
                int j = cand[x];
                int64_t a = ps->t + p->tt[(size_t)ps->pos * N + j];
                int64_t dep = (a > p->ready[j] ? a : p->ready[j]) + p->service[j];
                if (dep > tmax)
                    tmax = dep;
            }
            if (ps->pend)
                tmax += p->b_dur; /* a break taken on the way */
            int nu = 0;
            us[0] = 0;
            for (int d = cd[b]; d < m && dorder[d].due < tmax; d++) {
                if (is_set(vis, dorder[d].i))
                    continue;
                ud[nu] = dorder[d].due;
                us[nu + 1] = us[nu] + dorder[d].due;
                nu++;
            }
            for (int d = cd[b], u = 0; d < m && u < BEAM_URGENT; d++) {
                int i = dorder[d].i, dup = 0;
                if (is_set(vis, i))
                    continue;
                for (int x = 0; x < soon; x++)
                    dup |= cand[x] == i;
                u++;
                if (!dup)
                    cand[nc++] = i;
            }
            for (int x = 0; x < nc; x++) {
                int j = cand[x];
                Kid *kd = &kids[nk++];
                kd->parent = b;
                kd->stop = j;
                kd->s = *ps;
                step(p, &kd->s, j, level, m);
                /* the lateness already certain: every unserved stop due before now */
                int64_t t = kd->s.t, late = kd->s.L;
                int lo = 0, hi = nu; /* the unserved due before t: ud[0..lo-1] */
                while (lo < hi) {
                    int mid = (lo + hi) / 2;
                    if (ud[mid] < t)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                int64_t owed = (int64_t)lo * t - us[lo];
                if (p->due[j] < t)
                    owed -= t - p->due[j];
                late += owed;
                if (p->has_shift_end) {
                    int64_t end = t + p->tt[(size_t)j * N + e];
                    if (end > p->shift_end)
                        late += end - p->shift_end;
                }
                rank[nk - 1].kid = (int)(nk - 1);
                rank[nk - 1].score =
                    price(p, kd->s.D, late, kd->s.O, kd->s.P / (m > 1 ? (double)(m - 1) : 1.0));
            }
        }
        /* of the kids with the same stops and the same last stop, the cheapest (an open
         * addressing table of tags and places in rank); then the B cheapest of those */
        memset(table, 0, sizeof(uint64_t) * tsize);
        size_t nuniq = 0;
        for (size_t x = 0; x < nk; x++) {
            const Kid *kd = &kids[x];
            uint64_t tag = ch[kd->parent] ^ zob[kd->stop] ^ zob[m + kd->stop];
            size_t slot = (size_t)(tag * 0x9E3779B97F4A7C15ULL) & (tsize - 1);
            while (table[slot] && table[slot] != tag)
                slot = (slot + 1) & (tsize - 1);
            if (!table[slot]) {
                table[slot] = tag;
                place[slot] = (int)nuniq;
                rank[nuniq++] = rank[x];
            } else if (rank_less(&rank[x], &rank[place[slot]])) {
                rank[place[slot]] = rank[x];
            }
        }
        size_t take = nuniq < (size_t)B ? nuniq : (size_t)B;
        select_least(rank, nuniq, take);
        int kept = 0;
        for (size_t x = 0; x < take; x++) {
            const Kid *kd = &kids[rank[x].kid];
            uint64_t h = ch[kd->parent] ^ zob[kd->stop];
            uint64_t *v = nv + (size_t)kept * words;
            memcpy(v, cv + (size_t)kd->parent * words, sizeof(uint64_t) * (size_t)words);
            set_bit(v, kd->stop);
            ns[kept] = kd->s;
            nh[kept] = h;
            nd[kept] = first_unset(dorder, cd[kd->parent], m, v);
            nr[kept] = first_unset(rorder, cr[kd->parent], m, v);
            hp[(size_t)level * B + kept] = kd->parent;
            hs[(size_t)level * B + kept] = kd->stop;
            kept++;
        }
        nb = kept;
        St *ts = cs; cs = ns; ns = ts;
        uint64_t *tv = cv; cv = nv; nv = tv;
        uint64_t *th = ch; ch = nh; nh = th;
        int *td = cd; cd = nd; nd = td;
        td = cr; cr = nr; nr = td;
    }
    /* the cheapest complete route, priced as the search prices it */
    int bi = 0;
    double bc = INFINITY;
    for (int b = 0; b < nb; b++) {
        St s = cs[b];
        end_step(p, &s);
        double c = price(p, s.D, s.L, s.O, depth_of(p, s.P, m, 0));
        if (c < bc) {
            bc = c;
            bi = b;
        }
    }
    for (int level = total - 1, b = bi; level >= 0; level--) {
        out[level] = hs[(size_t)level * B + b];
        b = hp[(size_t)level * B + b];
    }
    rc = 0;
done:
    free(dorder);
    free(rorder);
    free(cr);
    free(nr);
    free(zob);
    free(cs);
    free(ns);
    free(cv);
    free(nv);
    free(ch);
    free(nh);
    free(cd);
    free(nd);
    free(hp);
    free(hs);
    free(kids);
    free(rank);
    free(ud);
    free(us);
    free(table);
    free(place);
    return rc;
}


/* The route of the stops with binding windows, by the beam search; then each stop whose
 * window covers at least half of the day (from the start to the shift end, or the latest
 * due time), the farthest from the start first, where it adds the least distance without
 * making itself or a later stop late (the waits and slack after the place absorb the
 * delay), else where it adds the least distance and lateness. On a day of wide windows
 * and free stops, a start that keeps the windowed stops' order in time. */
static int build_skeleton(const Prob *p, const int *route, int fixed, int width, int *out)
{
    const int m = p->m, N = p->N, e = m + 1;
    int64_t t0 = p->start_time, end = p->has_shift_end ? p->shift_end : t0;
    for (int i = 0; !p->has_shift_end && i < m; i++)
        if (p->due[i] > end)
            end = p->due[i];
    int64_t horizon = end - t0;
    char *skip = calloc((size_t)m + 1, 1);
    int *loose = malloc(sizeof(int) * (size_t)(m + 1));
    int64_t *dep = malloc(sizeof(int64_t) * (size_t)(m + 1));
    int64_t *arr = malloc(sizeof(int64_t) * (size_t)(m + 1));
    int64_t *abso = malloc(sizeof(int64_t) * (size_t)(m + 2));
    int rc = -1, nl = 0;
    if (!skip || !loose || !dep || !arr || !abso)
        goto done;
    for (int i = 0; i < m; i++) {
        int64_t lo = p->ready[i] > t0 ? p->ready[i] : t0, hi = p->due[i] < end ? p->due[i] : end;
        if (horizon > 0 && 2 * (hi - lo) >= horizon && !(fixed && i == route[0])) {
            skip[i] = 1;
            loose[nl++] = i;
        }
    }
    if (build_beam(p, route, fixed, width, skip, out) < 0)
        goto done;
    /* the farthest from the start first, ties by index */
    for (int x = 1; x < nl; x++) {
        int i = loose[x], y = x;
        int64_t di = p->dm[(size_t)m * N + i];
        while (y > 0) {
            int k = loose[y - 1];
            int64_t dk = p->dm[(size_t)m * N + k];
            if (dk > di || (dk == di && k < i))
                break;
            loose[y] = k;
            y--;
        }
        loose[y] = i;
    }
    const int64_t BIG = INT64_MAX / 4;
    int len = m - nl;
    for (int x = 0; x < nl; x++) {
        int i = loose[x];
        /* the schedule of the route so far: departures, arrivals, what a delay at each
         * arrival can be before a stop from there on (or the end) is late */
        St s = start_state(p);
        for (int k = 0; k < len; k++) {
            arr[k] = s.t + p->tt[(size_t)s.pos * N + out[k]];
            step(p, &s, out[k], k, len);
            dep[k] = s.t;
        }
        int64_t fin = s.t + p->tt[(size_t)s.pos * N + e];
        abso[len] = !p->has_shift_end ? BIG : fin <= p->shift_end ? p->shift_end - fin : 0;
        for (int k = len - 1; k >= 0; k--) {
            int j = out[k];
            int64_t start = dep[k] - p->service[j];
            abso[k] = absorb(p->ready[j] - arr[k], p->due[j] - start, abso[k + 1], BIG);
        }
        int bq = -1, bfree = 0;
        double bv = INFINITY;
        for (int q = fixed; q <= len; q++) { /* i goes before position q */
            int a = q > 0 ? out[q - 1] : m, b = q < len ? out[q] : e;
            int64_t leave = q > 0 ? dep[q - 1] : t0;
            int64_t at = leave + p->tt[(size_t)a * N + i];
            int64_t start = at > p->ready[i] ? at : p->ready[i];
            int64_t own = start - p->due[i] > 0 ? start - p->due[i] : 0;
            int64_t push = start + p->service[i] + p->tt[(size_t)i * N + b] -
                           (leave + p->tt[(size_t)a * N + b]);
            double dd = (double)(p->dm[(size_t)a * N + i] + p->dm[(size_t)i * N + b] -
                                 p->dm[(size_t)a * N + b]);
            int ok = own == 0 && push <= abso[q];
            if (ok && (!bfree || dd < bv)) {
                bq = q;
                bv = dd;
                bfree = 1;
            } else if (!bfree) {
                double v = dd + p->wl * (double)(own + (push > abso[q] ? push - abso[q] : 0));
                if (v < bv) {
                    bq = q;
                    bv = v;
                }
            }
        }
        memmove(out + bq + 1, out + bq, sizeof(int) * (size_t)(len - bq));
        out[bq] = i;
        len++;
    }
    rc = 0;
done:
    free(skip);
    free(loose);
    free(dep);
    free(arr);
    free(abso);
    return rc;
}

/* ------------------------------------------------------------------ Python API */

/* The route as stop positions, read into a new array; on failure p is freed and a Python
   error is set. */
static int *route_of(Prob *p, PyObject *route)
{
    int *r = malloc(sizeof(int) * (size_t)(p->m + 1));
    if (!r) {
        prob_free(p);
        PyErr_NoMemory();
        return NULL;
    }
    if (read_route(route, p, r) < 0) {
        free(r);
        prob_free(p);
        return NULL;
    }
    return r;
}

/* route_of for a search or a construction, which keeps the first ``fixed`` stops: fixed=1
   needs a stop to keep. On failure p is freed and a Python error is set. */
static int *start_of(Prob *p, PyObject *route, int fixed)
{
    if (fixed && p->m == 0) {
        prob_free(p);
        PyErr_SetString(PyExc_ValueError, "fixed=1 needs at least one stop");
        return NULL;
    }
    return route_of(p, route);
}

#define PROBLEM_KW                                                                          \
    "travel_time", "distance", "nodes", "ready", "due", "service", "dload", "depth", "route", \
        "start_node", "start_time", "end_node", "shift_end", "capacity", "initial_load",     \
        "break_", "weights"

PyDoc_STRVAR(cost_doc,
             "cost(travel_time, distance, nodes, ready, due, service, dload, depth, route,\n"
             "     start_node, start_time, end_node, *, shift_end=None, capacity=None,\n"
             "     initial_load=0, break_=None, weights=(100.0, 10000.0, 1.0))\n"
             "--\n\n"
             "Simulate route (stop positions) as edge.sequencer.schedule does and return\n"
             "(cost, distance, lateness, overload, depth). Matrices: 2-D int64; per-stop\n"
             "arrays: 1-D int64 (depth float64); break_: (earliest, latest, duration);\n"
             "weights: (lateness, overload, depth). Bad input raises ValueError.");

/* A new list of the ``n`` ints of ``a``; NULL with an exception set on failure. */
static PyObject *int_list(const int *a, int n)
{
    PyObject *list = PyList_New(n);
    if (!list)
        return NULL;
    for (int k = 0; k < n; k++) {
        PyObject *x = PyLong_FromLong(a[k]);
        if (!x) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, k, x);
    }
    return list;
}

static PyObject *py_cost(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {PROBLEM_KW, NULL};
    PyObject *tt, *dm, *nodes, *ready, *due, *service, *dload, *depth, *route;
    PyObject *shift_end = Py_None, *capacity = Py_None, *brk = Py_None;
    long long start_node, start_time, end_node, initial_load = 0;
    double wl = 100.0, wo = 10000.0, wd = 1.0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOLLL|$OOLO(ddd):cost", kwlist, &tt, &dm,
                                     &nodes, &ready, &due, &service, &dload, &depth, &route,
                                     &start_node, &start_time, &end_node, &shift_end, &capacity,
                                     &initial_load, &brk, &wl, &wo, &wd))
        return NULL;
    Prob p;
    if (prob_init(&p, tt, dm, nodes, ready, due, service, dload, depth, start_node, start_time,
                  end_node, shift_end, capacity, initial_load, brk, wl, wo, wd) < 0)
        return NULL;
    int n = p.m;
    int *r = route_of(&p, route);
    if (!r)
        return NULL;
    St s = start_state(&p);
    for (int k = 0; k < n; k++)
        step(&p, &s, r[k], k, n);
    end_step(&p, &s);
    double depthv = depth_of(&p, s.P, n, n ? r[0] : 0);
    double c = price(&p, s.D, s.L, s.O, depthv);
    free(r);
    prob_free(&p);
    return Py_BuildValue("(dLLLd)", c, (long long)s.D, (long long)s.L, (long long)s.O, depthv);
}

PyDoc_STRVAR(search_doc,
             "search(travel_time, distance, nodes, ready, due, service, dload, depth, route,\n"
             "       start_node, start_time, end_node, *, shift_end=None, capacity=None,\n"
             "       initial_load=0, break_=None, weights=(100.0, 10000.0, 1.0), fixed=0,\n"
             "       seed=0, time_limit=0.1, max_iters=-1, patience=-1, neighbours=20,\n"
             "       accept=0.0, accept_start=-1.0, rule=3, segment=3, segment_after=0)\n"
             "--\n\n"
             "Iterated local search from route (the warm start, stop positions); returns\n"
             "(order, cost, stats). fixed=1 keeps route[0] first. Stops at time_limit seconds\n"
             "(<= 0: no limit), after max_iters kicks or patience kicks without a gain\n"
             "(negative: no limit). accept: how much worse than the best found (a fraction)\n"
             "a kicked route may be and still be kept; accept_start: that fraction at the\n"
             "start, falling to accept as the square of the share of the run left (the time\n"
             "limit's, or max_iters' where given; negative: accept throughout);\n"
             "rule: bit 0 first improvement in the first descent, bit 1 after kicks, bit 2\n"
             "either at random per kick, bit 3 both first descents;\n"
             "segment: or-opt's longest segment (1 to 8); segment_after: the same in the\n"
             "descents after a kick (0: as segment).\n"
             "Never returns a costlier route than the warm start.");

static PyObject *py_search(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {PROBLEM_KW, "fixed",     "seed",       "time_limit", "max_iters",
                             "patience", "neighbours", "accept", "accept_start", "rule",
                             "segment", "segment_after", NULL};
    PyObject *tt, *dm, *nodes, *ready, *due, *service, *dload, *depth, *route;
    PyObject *shift_end = Py_None, *capacity = Py_None, *brk = Py_None;
    long long start_node, start_time, end_node, initial_load = 0;
    double wl = 100.0, wo = 10000.0, wd = 1.0;
    int fixed = 0, neighbours = 20, rule = FIRST_IMP, seg = MAX_SEG, seg_after = 0;
    unsigned long long seed = 0;
    double time_limit = 0.1, accept = 0.0, accept_start = -1.0;
    long long max_iters = -1, patience = -1;
    if (!PyArg_ParseTupleAndKeywords(
            args, kw, "OOOOOOOOOLLL|$OOLO(ddd)iKdLLiddiii:search", kwlist, &tt, &dm, &nodes,
            &ready, &due, &service, &dload, &depth, &route, &start_node, &start_time, &end_node,
            &shift_end, &capacity, &initial_load, &brk, &wl, &wo, &wd, &fixed, &seed,
            &time_limit, &max_iters, &patience, &neighbours, &accept, &accept_start, &rule, &seg,
            &seg_after))
        return NULL;
    if (fixed != 0 && fixed != 1) {
        PyErr_SetString(PyExc_ValueError, "fixed must be 0 or 1");
        return NULL;
    }
    if (neighbours < 1 || !(accept >= 0.0) || isnan(accept_start) || isnan(time_limit)) {
        PyErr_SetString(PyExc_ValueError, "neighbours must be >= 1, accept >= 0 and "
                                          "accept_start and time_limit numbers");
        return NULL;
    }
    if (seg < 1 || seg > SEG_LIMIT) {
        PyErr_Format(PyExc_ValueError, "segment must be 1 to %d, not %d", SEG_LIMIT, seg);
        return NULL;
    }
    if (seg_after < 0 || seg_after > SEG_LIMIT) {
        PyErr_Format(PyExc_ValueError, "segment_after must be 0 (as segment) to %d, not %d",
                     SEG_LIMIT, seg_after);
        return NULL;
    }
    Prob p;
    if (prob_init(&p, tt, dm, nodes, ready, due, service, dload, depth, start_node, start_time,
                  end_node, shift_end, capacity, initial_load, brk, wl, wo, wd) < 0)
        return NULL;
    int n = p.m;
    int *r = start_of(&p, route, fixed);
    if (!r)
        return NULL;
    Stats st;
    memset(&st, 0, sizeof(st));
    double c = 0.0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_search(&p, r, fixed, (uint64_t)seed, time_limit, max_iters, patience, neighbours,
                    accept, accept_start, rule, seg, seg_after, &c, &st);
    Py_END_ALLOW_THREADS
    prob_free(&p);
    if (rc < 0) {
        free(r);
        return PyErr_NoMemory();
    }
    PyObject *order = int_list(r, n);
    free(r);
    if (!order)
        return NULL;
    PyObject *stats = Py_BuildValue(
        "{s:L,s:L,s:L,s:L,s:L,s:L,s:d,s:O}", "iterations", st.iterations, "evaluations",
        st.evals, "moves", st.moves, "improvements", st.improvements, "mispriced", st.mispriced,
        "relocated", st.relocated, "seconds", st.seconds, "timed_out", st.timed_out ? Py_True : Py_False);
    if (!stats) {
        Py_DECREF(order);
        return NULL;
    }
    return Py_BuildValue("(NdN)", order, c, stats);
}

PyDoc_STRVAR(construct_doc,
             "construct(travel_time, distance, nodes, ready, due, service, dload, depth, route,\n"
             "          start_node, start_time, end_node, *, shift_end=None, capacity=None,\n"
             "          initial_load=0, break_=None, weights=(100.0, 10000.0, 1.0), fixed=0,\n"
             "          method='insertion', urgency=0.0, width=100)\n"
             "--\n\n"
             "A start route (stop positions), the first `fixed` stops of route kept: as\n"
             "edge/sequencer/greedy.py builds it, method 'insertion' (cheapest insertion\n"
             "keeping the windows, stops by due time), 'insertion in order' (the same, stops\n"
             "in route's order) or 'nearest' (time-oriented nearest neighbour, urgency per\n"
             "second of slack); or 'beam' (a beam search forwards in time keeping `width`\n"
             "partial routes) or 'windows first' (that beam over the stops whose windows\n"
             "cover less than half the day, the others then inserted). Bad input raises\n"
             "ValueError.");

static PyObject *py_construct(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {PROBLEM_KW, "fixed", "method", "urgency", "width", NULL};
    PyObject *tt, *dm, *nodes, *ready, *due, *service, *dload, *depth, *route;
    PyObject *shift_end = Py_None, *capacity = Py_None, *brk = Py_None;
    long long start_node, start_time, end_node, initial_load = 0;
    double wl = 100.0, wo = 10000.0, wd = 1.0, urgency = 0.0;
    int fixed = 0, width = 100;
    const char *method = "insertion";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOLLL|$OOLO(ddd)isdi:construct", kwlist,
                                     &tt, &dm, &nodes, &ready, &due, &service, &dload, &depth,
                                     &route, &start_node, &start_time, &end_node, &shift_end,
                                     &capacity, &initial_load, &brk, &wl, &wo, &wd, &fixed,
                                     &method, &urgency, &width))
        return NULL;
    int kind = strcmp(method, "insertion") == 0           ? 0
               : strcmp(method, "insertion in order") == 0 ? 1
               : strcmp(method, "nearest") == 0            ? 2
               : strcmp(method, "beam") == 0               ? 3
               : strcmp(method, "windows first") == 0      ? 4
                                                           : -1;
    if (kind < 0) {
        PyErr_Format(PyExc_ValueError,
                     "method must be 'insertion', 'insertion in order', 'nearest', 'beam' or "
                     "'windows first', got '%.50s'",
                     method);
        return NULL;
    }
    if (fixed != 0 && fixed != 1) {
        PyErr_SetString(PyExc_ValueError, "fixed must be 0 or 1");
        return NULL;
    }
    if (!(urgency >= 0.0) || isinf(urgency)) {
        PyErr_SetString(PyExc_ValueError, "urgency must be finite and non-negative");
        return NULL;
    }
    if (width < 1 || width > BEAM_WIDTH_LIMIT) {
        PyErr_Format(PyExc_ValueError, "width must be 1 to %d, not %d", BEAM_WIDTH_LIMIT, width);
        return NULL;
    }
    Prob p;
    if (prob_init(&p, tt, dm, nodes, ready, due, service, dload, depth, start_node, start_time,
                  end_node, shift_end, capacity, initial_load, brk, wl, wo, wd) < 0)
        return NULL;
    int n = p.m;
    int *r = start_of(&p, route, fixed);
    if (!r)
        return NULL;
    int *out = malloc(sizeof(int) * (size_t)(n + 1));
    int rc = -1;
    if (out) {
        /* the comparator of the sort by due time reads a global: built under the GIL */
        if (kind >= 3) {
            Py_BEGIN_ALLOW_THREADS
            rc = kind == 3 ? build_beam(&p, r, fixed, width, NULL, out)
                           : build_skeleton(&p, r, fixed, width, out);
            Py_END_ALLOW_THREADS
        } else if (kind == 2)
            rc = build_nearest(&p, r, fixed, urgency, out);
        else
            rc = build_insertion(&p, r, fixed, kind == 1 ? r : NULL, out);
    }
    prob_free(&p);
    free(r);
    if (rc < 0) {
        free(out);
        return PyErr_NoMemory();
    }
    PyObject *order = int_list(out, n);
    free(out);
    return order;
}

static PyMethodDef methods[] = {
    {"cost", (PyCFunction)(void (*)(void))py_cost, METH_VARARGS | METH_KEYWORDS, cost_doc},
    {"search", (PyCFunction)(void (*)(void))py_search, METH_VARARGS | METH_KEYWORDS,
     search_doc},
    {"construct", (PyCFunction)(void (*)(void))py_construct, METH_VARARGS | METH_KEYWORDS,
     construct_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_lsearch",
    "Wayline's compiled single-vehicle local search (see edge/sequencer/lsearch.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__lsearch(void)
{
    return PyModule_Create(&module);
}
