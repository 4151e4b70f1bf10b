// Decimal text to the nearest double, correctly rounded (ties to even): a fast estimate, then
// corrected against exact big-integer comparisons with the halfway points (AssemblyScript's own
// parseFloat is not correctly rounded).

/** Digits kept exactly; a longer number keeps a sticky last digit (enough for any double). */
const MAX_DIGITS = 800;

/** An unsigned big integer: little-endian 32-bit limbs. */
class Big {
  limbs: u32[] = [];

  static of(v: u64): Big {
    const b = new Big();
    if (v) b.limbs.push(<u32>v);
    if (v >> 32) b.limbs.push(<u32>(v >> 32));
    return b;
  }
  /** this = this * m + add. */
  mulAdd(m: u32, add: u32): Big {
    let carry = <u64>add;
    const limbs = this.limbs;
    for (let i = 0; i < limbs.length; i++) {
      const t = <u64>unchecked(limbs[i]) * <u64>m + carry;
      unchecked(limbs[i] = <u32>t);
      carry = t >> 32;
    }
    if (carry) limbs.push(<u32>carry);
    return this;
  }
  mul(other: Big): Big {
    const a = this.limbs, b = other.limbs;
    const out = new Array<u32>(a.length + b.length);
    for (let i = 0; i < a.length; i++) {
      let carry: u64 = 0;
      const x = <u64>unchecked(a[i]);
      for (let j = 0; j < b.length; j++) {
        const t = x * <u64>unchecked(b[j]) + <u64>unchecked(out[i + j]) + carry;
        unchecked(out[i + j] = <u32>t);
        carry = t >> 32;
      }
      let k = i + b.length;
      while (carry) {
        const t = <u64>unchecked(out[k]) + carry;
        unchecked(out[k] = <u32>t);
        carry = t >> 32;
        k++;
      }
    }
    const r = new Big();
    r.limbs = out;
    r.trim();
    return r;
  }
  shl(bits: i32): Big {
    const words = bits >> 5, rest = bits & 31;
    const a = this.limbs;
    const out = new Array<u32>(a.length + words + 1);
    for (let i = 0; i < a.length; i++) {
      const v = <u64>unchecked(a[i]) << <u64>rest;
      unchecked(out[i + words] = out[i + words] | <u32>v);
      unchecked(out[i + words + 1] = <u32>(v >> 32));
    }
    const r = new Big();
    r.limbs = out;
    r.trim();
    return r;
  }
  trim(): void {
    while (this.limbs.length && this.limbs[this.limbs.length - 1] == 0) this.limbs.pop();
  }
  cmp(other: Big): i32 {
    const a = this.limbs, b = other.limbs;
    if (a.length != b.length) return a.length < b.length ? -1 : 1;
    for (let i = a.length - 1; i >= 0; i--) {
      if (unchecked(a[i]) != unchecked(b[i])) return unchecked(a[i]) < unchecked(b[i]) ? -1 : 1;
    }
    return 0;
  }
}

function pow5(n: i32): Big {
  const b = Big.of(1);
  for (; n >= 13; n -= 13) b.mulAdd(1220703125, 0);
  let r: u32 = 1;
  for (; n > 0; n--) r *= 5;
  return b.mulAdd(r, 0);
}

// @ts-ignore: decorator
@lazy const POW10: f64[] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
  1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/** The double nearest to `digits` (ASCII decimal digits, no leading zeros) times 10^exp. */
export function decimalToDouble(digits: string, exp: i32): f64 {
  let n = digits.length;
  if (n == 0) return 0;
  if (n > MAX_DIGITS) { // beyond: only whether something non-zero follows matters
    let sticky = false;
    for (let i = MAX_DIGITS; i < n; i++) if (digits.charCodeAt(i) != 0x30) sticky = true;
    exp += n - MAX_DIGITS;
    digits = digits.substring(0, MAX_DIGITS);
    if (sticky) { digits += "1"; exp -= 1; }
    n = digits.length;
  }
  if (exp + n > 310) return Infinity;
  if (exp + n < -330) return 0;
  // The fast path: an exact mantissa times an exact power of ten is rounded once.
  let lead: u64 = 0;
  const used = min(n, 19);
  for (let i = 0; i < used; i++) lead = lead * 10 + <u64>(digits.charCodeAt(i) - 0x30);
  const rest = exp + n - used;
  if (n <= 15 && rest >= -22 && rest <= 22) {
    return rest >= 0 ? <f64>lead * unchecked(POW10[rest]) : <f64>lead / unchecked(POW10[-rest]);
  }
  // An estimate within a few ulps (scaled by 2^600 so that small values stay normal).
  let x = <f64>lead;
  let e = rest;
  if (e < 0) {
    x *= NativeMath.scalbn(1.0, 600);
    for (; e < -22; e += 22) x /= 1e22;
    x = x / unchecked(POW10[-e]) * NativeMath.scalbn(1.0, -600);
  } else {
    for (; e > 22; e -= 22) x *= 1e22;
    x *= unchecked(POW10[e]);
  }
  if (!isFinite(x)) x = f64.MAX_VALUE;
  // Exact: value = D * 10^exp, against each halfway point (2m+1) * 2^(k-1).
  let d = new Big();
  for (let i = 0; i < n; i++) d.mulAdd(10, <u32>(digits.charCodeAt(i) - 0x30));
  const p5 = pow5(exp < 0 ? -exp : exp);
  if (exp > 0) d = d.mul(p5);
  for (let round = 0; round < 64; round++) {
    const above = aboveHalf(d, p5, exp, x);
    if (above > 0 || (above == 0 && (reinterpret<u64>(x) & 1))) {
      if (x == f64.MAX_VALUE && above >= 0) return Infinity;
      x = reinterpret<f64>(reinterpret<u64>(x) + 1);
      if (above == 0) return x;
      continue;
    }
    if (x == 0) return x;
    const prev = reinterpret<f64>(reinterpret<u64>(x) - 1);
    const below = aboveHalf(d, p5, exp, prev);
    if (below < 0 || (below == 0 && (reinterpret<u64>(prev) & 1) == 0)) {
      x = prev;
      if (below == 0) return x;
      continue;
    }
    return x;
  }
  return x;
}

/** Whether D * 10^exp (d already holds D * 5^exp when exp > 0) is above (1), at (0) or below
 *  (-1) the halfway point between the positive double `x` and the next one up. */
function aboveHalf(d: Big, p5: Big, exp: i32, x: f64): i32 {
  const bits = reinterpret<u64>(x);
  const biased = <i32>(bits >> 52);
  const m = biased ? (bits & 0xFFFFFFFFFFFFF) | 0x10000000000000 : bits & 0xFFFFFFFFFFFFF;
  const k = biased ? biased - 1075 : -1074;
  let half = Big.of(2 * m + 1);
  if (exp < 0) half = half.mul(p5);
  const shift = (k - 1) - exp; // powers of two on the halfway side, net
  return shift >= 0 ? d.cmp(half.shl(shift)) : d.shl(-shift).cmp(half);
}
