// Streaming top-candidate selection over score tiles that are still in cache (see fused_scan.py).
//
// A chunk of users is scored one item tile at a time into a small buffer (torch.mm); each tile is
// handed to scan_tile_*, which keeps, per user, a reservoir of the best (score, position) pairs seen
// so far. Most of a tile is rejected 128 (bf16) or 64 (fp32) scores at a time by one vector maximum
// compared against the user's threshold, so the selection costs a fraction of the product and the
// score matrix never goes to memory. This is what FAISS's flat index does with a heap per query;
// the reservoir (FAISS's ReservoirTopN) makes an insertion O(1) amortised, which matters for k = 100.
//
// Scores are compared as integers: a float's bits, sign-magnitude, become an order-preserving
// two's-complement key (negatives get their magnitude bits flipped; -0 and +0 are the same key).
// Entries are packed as key << 32 | (2^32 - 1 - position), so one integer comparison orders by
// score, then by lower position: the selection is exact, ties going to the lower position.
// Positions of one user must arrive in increasing order (tiles in order), and so must its excluded
// positions (sorted CSR rows): a cursor walks them.
//
// Threads: OpenMP over users, in the process's one OpenMP runtime (torch's libgomp.so.1 is loaded
// first, so the loader binds this library to it and the product and the scan share one pool).

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <limits>

#include <omp.h>

namespace {

constexpr int64_t kNoThreshold = INT64_MIN;  // reservoir not yet compacted: everything enters

// Order-preserving integer key of a float's bits (sign-magnitude to two's complement). Vectorises;
// -0 gets -1, a key no other float has, so comparing it against a kept key (always canonical, see
// key_of) only ever lets a block through, never skips one wrongly.
template <typename Bits, typename Key>
inline Key raw_key(Bits bits) {
    constexpr int kShift = sizeof(Key) * 8 - 1;
    constexpr Key kMagnitude = static_cast<Key>(~(static_cast<Bits>(1) << kShift));
    Key s = static_cast<Key>(bits);
    return static_cast<Key>(s ^ ((s >> kShift) & kMagnitude));
}

template <typename Bits, typename Key>
inline Key key_of(Bits bits) {  // the canonical key: -0 and +0 are the same score
    Key key = raw_key<Bits, Key>(bits);
    return key == -1 ? 0 : key;
}

template <typename Bits, typename Key, int kWidth>
inline int64_t span_max(const Bits* x) {  // one vertical max per register, one horizontal at the end
    Key m = std::numeric_limits<Key>::min();
    for (int j = 0; j < kWidth; ++j) {
        Key key = raw_key<Bits, Key>(x[j]);
        m = key > m ? key : m;
    }
    return m;
}

inline int64_t pack(int64_t key, int64_t pos) {
    return static_cast<int64_t>(static_cast<uint64_t>(key) << 32) | (0xFFFFFFFFLL - pos);
}

// Move the `cap` largest of a[0, count) to the front, in any order (0 < cap <= count). Quickselect
// with a branchless partition: on random scores std::nth_element mispredicts half its branches,
// and cutting reservoirs was most of the scan at k = 100 (perf). Entries are distinct (positions).
inline void select_top(int64_t* a, int64_t count, int64_t cap) {
    int64_t lo = 0, hi = count;  // the cut at `cap` lies in [lo, hi)
    while (hi - lo > 24) {
        const int64_t mid = lo + (hi - lo) / 2;  // median of three as the pivot, moved to hi - 1
        if (a[lo] > a[mid]) std::swap(a[lo], a[mid]);
        if (a[mid] > a[hi - 1]) std::swap(a[mid], a[hi - 1]);
        if (a[lo] > a[mid]) std::swap(a[lo], a[mid]);
        std::swap(a[mid], a[hi - 1]);
        const int64_t pivot = a[hi - 1];
        int64_t j = lo;
        for (int64_t i = lo; i < hi - 1; ++i) {  // [lo, j) > pivot, no branch on the comparison
            const int64_t x = a[i];
            a[i] = a[j];
            a[j] = x;
            j += x > pivot;
        }
        std::swap(a[j], a[hi - 1]);  // the pivot at j: [lo, j) above it, (j, hi) below
        if (j == cap || j + 1 == cap) return;
        if (j > cap) {
            hi = j;
        } else {
            lo = j + 1;
        }
    }
    std::sort(a + lo, a + hi, std::greater<int64_t>());
}

// Keep the best `cap` of a row's `count` entries; returns the threshold (key of the cap-th).
inline int64_t compact(int64_t* entries, int64_t count, int64_t cap) {
    select_top(entries, count, cap);
    const int64_t* lowest = std::min_element(entries, entries + cap);
    return *lowest >> 32;
}

struct Row {  // one user's state, kept between tiles
    int64_t* entries;
    int64_t count, threshold, cursor, cursor_end;
    const int64_t* excluded;
    int64_t cap, room;
    int64_t lowest, highest;  // keys of -inf and +inf: -inf scores and NaNs are never offered

    inline void offer(int64_t key, int64_t pos) {
        if (key <= threshold || key <= lowest || key > highest) return;
        while (cursor < cursor_end && excluded[cursor] < pos) ++cursor;
        if (cursor < cursor_end && excluded[cursor] == pos) return;  // history
        entries[count++] = pack(key, pos);
        if (count == room) {
            threshold = compact(entries, count, cap);
            count = cap;
        }
    }
};

// Which of a block's scores beat `threshold`, as a bit mask (one vector compare where the CPU has
// mask registers).
template <typename Bits, typename Key, int kBlock>
inline uint32_t above(const Bits* x, Key threshold) {
    static_assert(kBlock <= 32, "one bit per score of a block");
    uint32_t mask = 0;
    for (int j = 0; j < kBlock; ++j) mask |= static_cast<uint32_t>(raw_key<Bits, Key>(x[j]) > threshold) << j;
    return mask;
}

// Rows [r0, r1) of one tile. A span of 4 blocks is rejected with one comparison of its maximum
// against the row's threshold (the common case once the reservoir has filled); in a span that
// passes, each block gives the mask of its scores above the threshold and only those are offered.
template <typename Bits, typename Key, int kBlock>
inline void scan_rows(const Bits* scores, int64_t r0, int64_t r1, int64_t ld, int64_t n_valid, int64_t base,
                      const int64_t* ex_ptr, const int64_t* ex_pos, int64_t* ex_cursor,
                      int64_t* entries, int64_t* count, int64_t* threshold, int64_t cap, int64_t room) {
    constexpr int64_t kSpan = 4 * kBlock;
    constexpr Bits kExponent = static_cast<Bits>(sizeof(Bits) == 2 ? 0x7F80 : 0x7F800000);  // +inf
    constexpr Bits kSign = static_cast<Bits>(static_cast<Bits>(1) << (sizeof(Bits) * 8 - 1));
    const int64_t kPosInf = key_of<Bits, Key>(kExponent), kNegInf = key_of<Bits, Key>(kSign | kExponent);
    constexpr uint32_t kAll = kBlock == 32 ? ~0U : (1U << kBlock) - 1;
    for (int64_t r = r0; r < r1; ++r) {
        const Bits* x = scores + r * ld;
        Row row{entries + r * room, count[r], threshold[r], ex_cursor[r], ex_ptr[r + 1], ex_pos, cap, room,
                kNegInf, kPosInf};
        int64_t lo = 0;
        for (; lo + kSpan <= n_valid; lo += kSpan) {
            if (row.threshold != kNoThreshold && span_max<Bits, Key, kSpan>(x + lo) <= row.threshold) continue;
            for (int64_t b = lo; b < lo + kSpan; b += kBlock) {
                uint32_t mask = row.threshold == kNoThreshold
                                    ? kAll
                                    : above<Bits, Key, kBlock>(x + b, static_cast<Key>(row.threshold));
                while (mask) {  // offer re-checks: the threshold may rise inside the block
                    const int j = __builtin_ctz(mask);
                    mask &= mask - 1;
                    row.offer(key_of<Bits, Key>(x[b + j]), base + b + j);
                }
            }
        }
        for (; lo < n_valid; ++lo) row.offer(key_of<Bits, Key>(x[lo]), base + lo);
        count[r] = row.count;
        threshold[r] = row.threshold;
        ex_cursor[r] = row.cursor;
    }
}

// One clone per instruction set, picked at load time, so one build runs on any x86-64 and uses
// AVX-512 where present; everything above is inlined (flatten) so that it compiles for each.
#define CLONES __attribute__((flatten, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

CLONES void scan_rows_bf16(const uint16_t* scores, int64_t r0, int64_t r1, int64_t ld, int64_t n_valid,
                           int64_t base, const int64_t* ex_ptr, const int64_t* ex_pos, int64_t* ex_cursor,
                           int64_t* entries, int64_t* count, int64_t* threshold, int64_t cap, int64_t room) {
    scan_rows<uint16_t, int16_t, 32>(scores, r0, r1, ld, n_valid, base, ex_ptr, ex_pos, ex_cursor, entries,
                                     count, threshold, cap, room);
}

CLONES void scan_rows_f32(const uint32_t* scores, int64_t r0, int64_t r1, int64_t ld, int64_t n_valid,
                          int64_t base, const int64_t* ex_ptr, const int64_t* ex_pos, int64_t* ex_cursor,
                          int64_t* entries, int64_t* count, int64_t* threshold, int64_t cap, int64_t room) {
    scan_rows<uint32_t, int32_t, 16>(scores, r0, r1, ld, n_valid, base, ex_ptr, ex_pos, ex_cursor, entries,
                                     count, threshold, cap, room);
}

template <typename Bits, typename Scan>
void scan_tile(Scan scan, const Bits* scores, int64_t n_rows, int64_t ld, int64_t n_valid, int64_t base,
               const int64_t* ex_ptr, const int64_t* ex_pos, int64_t* ex_cursor,
               int64_t* entries, int64_t* count, int64_t* threshold, int64_t cap, int64_t room) {
#pragma omp parallel
    {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        scan(scores, n_rows * t / nt, n_rows * (t + 1) / nt, ld, n_valid, base, ex_ptr, ex_pos, ex_cursor,
             entries, count, threshold, cap, room);
    }
}

float dot(const float* u, const float* v, int64_t dim) {
    constexpr int kLanes = 16;
    float lane[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= dim; j += kLanes)
        for (int l = 0; l < kLanes; ++l) lane[l] += u[j + l] * v[j + l];
    for (int l = 0; j < dim; ++j, ++l) lane[l] += u[j] * v[j];
    for (int width = kLanes / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
    return lane[0];
}

CLONES void dot_and_select(const float* u, int64_t dim, const float* table, const int64_t* pos, int64_t c,
                           int64_t k, int64_t* entries, int64_t* pos_out, int64_t* key_out) {
    int64_t m = 0;
    for (int64_t i = 0; i < c; ++i) {
        if (pos[i] < 0) continue;
        float score = dot(u, table + pos[i] * dim, dim);
        if (!(score > -std::numeric_limits<float>::infinity())) continue;  // -inf or NaN: not eligible
        uint32_t bits;
        __builtin_memcpy(&bits, &score, sizeof bits);
        entries[m++] = pack(key_of<uint32_t, int32_t>(bits), pos[i]);
    }
    const int64_t kept = m < k ? m : k;
    std::partial_sort(entries, entries + kept, entries + m, std::greater<int64_t>());
    for (int64_t i = 0; i < k; ++i) {
        pos_out[i] = i < kept ? 0xFFFFFFFFLL - (entries[i] & 0xFFFFFFFFLL) : -1;
        key_out[i] = i < kept ? (entries[i] >> 32) : INT64_MIN;
    }
}

}  // namespace

extern "C" {

void scan_tile_bf16(const uint16_t* scores, int64_t n_rows, int64_t ld, int64_t n_valid, int64_t base,
                    const int64_t* ex_ptr, const int64_t* ex_pos, int64_t* ex_cursor,
                    int64_t* entries, int64_t* count, int64_t* threshold, int64_t cap, int64_t room) {
    scan_tile(scan_rows_bf16, scores, n_rows, ld, n_valid, base, ex_ptr, ex_pos, ex_cursor, entries, count,
              threshold, cap, room);
}

void scan_tile_f32(const uint32_t* scores, int64_t n_rows, int64_t ld, int64_t n_valid, int64_t base,
                   const int64_t* ex_ptr, const int64_t* ex_pos, int64_t* ex_cursor,
                   int64_t* entries, int64_t* count, int64_t* threshold, int64_t cap, int64_t room) {
    scan_tile(scan_rows_f32, scores, n_rows, ld, n_valid, base, ex_ptr, ex_pos, ex_cursor, entries, count,
              threshold, cap, room);
}

// Each row's best min(count, cap) entries, best first, as positions (-1 padded) and keys; and
// whether anything eligible was left out (a threshold was set, or more than cap remain).
void finish(int64_t* entries, int64_t n_rows, const int64_t* count, const int64_t* threshold,
            int64_t cap, int64_t room, int64_t* pos_out, int64_t* key_out, uint8_t* left_out) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n_rows; ++r) {
        int64_t* mine = entries + r * room;
        int64_t c = count[r];
        left_out[r] = threshold[r] != kNoThreshold || c > cap;
        if (c > cap) {
            compact(mine, c, cap);
            c = cap;
        }
        std::sort(mine, mine + c, std::greater<int64_t>());
        for (int64_t i = 0; i < cap; ++i) {
            pos_out[r * cap + i] = i < c ? 0xFFFFFFFFLL - (mine[i] & 0xFFFFFFFFLL) : -1;
            key_out[r * cap + i] = i < c ? (mine[i] >> 32) : INT64_MIN;
        }
    }
}

// Exact fp32 scores of each row's candidates (positions into `table`, -1 = none) and the best `k`
// of them, by score then lower position, as positions (-1 padded) and keys (INT64_MIN padded).
// One fixed summation order, 16 lanes then a fixed tree, built without FMA contraction
// (-ffp-contract=off), so every clone and every CPU gives the same bits for a (user, item) pair
// whatever the candidates around it: both search paths report the same bytes.
void rescore(const float* users, int64_t n_rows, int64_t dim, const float* table, const int64_t* pos,
             int64_t n_candidates, int64_t k, int64_t* scratch, int64_t* pos_out, int64_t* key_out) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n_rows; ++r) {
        dot_and_select(users + r * dim, dim, table, pos + r * n_candidates, n_candidates, k,
                       scratch + r * n_candidates, pos_out + r * k, key_out + r * k);
    }
}

}  // extern "C"
