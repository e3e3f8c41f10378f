// The web platform GitBook integrations use, over the engine's natives (src/native.rs).
// Evaluated once, at publish, before the bundle; the snapshot keeps the result. Nothing here
// may capture randomness or time: those are read from the host when called.
(function (native) {
  'use strict';
  const G = globalThis;
  const define = (name, value) =>
    Object.defineProperty(G, name, { value, writable: true, configurable: true, enumerable: false });

  // ---------------------------------------------------------------- bytes and text
  const toBytes = (data) => {
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    throw new TypeError('expected an ArrayBuffer or an ArrayBufferView');
  };
  const copyBuffer = (bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const utf8 = (text) => new Uint8Array(native.utf8Encode(String(text)));
  const fromUtf8 = (bytes) => native.utf8Decode(bytes, false);
  const concat = (chunks) => {
    let size = 0;
    for (const c of chunks) size += c.byteLength;
    const out = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.byteLength; }
    return out;
  };

  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') { return utf8(input); }
    encodeInto(input, dest) {
      const bytes = utf8(input);
      const n = Math.min(bytes.length, dest.length);
      dest.set(bytes.subarray(0, n));
      return { read: n === bytes.length ? String(input).length : fromUtf8(bytes.subarray(0, n)).length, written: n };
    }
  }
  class TextDecoder {
    constructor(label = 'utf-8', options = {}) {
      const l = String(label).toLowerCase().trim();
      if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') throw new RangeError(`TextDecoder: unsupported encoding '${label}'`);
      this.fatal = !!options.fatal;
      this.ignoreBOM = !!options.ignoreBOM;
    }
    get encoding() { return 'utf-8'; }
    decode(input, _options) {
      if (input === undefined) return '';
      let bytes = toBytes(input);
      if (!this.ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
      const text = native.utf8Decode(bytes, this.fatal);
      if (text === undefined) throw new TypeError('The encoded data was not valid utf-8');
      return text;
    }
  }
  define('TextEncoder', TextEncoder);
  define('TextDecoder', TextDecoder);

  const latin1 = (text) => {
    const s = String(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 255) throw new DOMException('The string contains characters outside of the Latin1 range', 'InvalidCharacterError');
      out[i] = c;
    }
    return out;
  };
  const fromLatin1 = (bytes) => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return s;
  };
  define('btoa', (data) => native.base64Encode(latin1(data)));
  define('atob', (data) => {
    const decoded = native.base64Decode(String(data));
    if (decoded === undefined) throw new DOMException('The string to be decoded is not correctly encoded', 'InvalidCharacterError');
    return fromLatin1(new Uint8Array(decoded));
  });

  // ---------------------------------------------------------------- errors and events
  // Stacks as V8 writes them (GitBook's runtime logs `error.stack` alone, expecting the
  // message on its first line), without the prelude's frames.
  const frameText = (c) => {
    const name = c.getFunctionName();
    const where = `${c.getFileName()}:${c.getLineNumber()}:${c.getColumnNumber()}`;
    return `    at ${name ? `${name} (${where})` : where}`;
  };
  Error.prepareStackTrace = (error, callsites) => {
    let head;
    try { head = String(error); } catch { head = 'Error'; }
    const frames = callsites.filter((c) => c.getFileName() !== 'weft:prelude').map(frameText);
    return frames.length ? `${head}\n${frames.join('\n')}` : head;
  };

  const codes = { IndexSizeError: 1, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
    InvalidAccessError: 15, TypeMismatchError: 17, NetworkError: 19, AbortError: 20, TimeoutError: 23, DataCloneError: 25,
    InvalidCharacterError: 5, OperationError: 0 };
  class DOMException extends Error {
    constructor(message = '', name = 'Error') {
      super(message);
      Object.defineProperty(this, 'name', { value: String(name), configurable: true, writable: true });
    }
    get code() { return codes[this.name] || 0; }
  }
  define('DOMException', DOMException);

  class Event {
    constructor(type, init = {}) {
      this.type = String(type);
      this.bubbles = !!init.bubbles;
      this.cancelable = !!init.cancelable;
      this.defaultPrevented = false;
      this.target = null;
      this.currentTarget = null;
      this.timeStamp = Date.now();
    }
    preventDefault() { if (this.cancelable) this.defaultPrevented = true; }
    stopPropagation() {}
    stopImmediatePropagation() { this._stop = true; }
  }
  const listenersOf = new WeakMap();
  class EventTarget {
    addEventListener(type, listener, options) {
      if (typeof listener !== 'function' && !(listener && typeof listener.handleEvent === 'function')) return;
      let map = listenersOf.get(this);
      if (!map) listenersOf.set(this, (map = new Map()));
      const list = map.get(type) || [];
      if (!list.some((l) => l.listener === listener)) list.push({ listener, once: !!(options && options.once) });
      map.set(type, list);
    }
    removeEventListener(type, listener) {
      const list = listenersOf.get(this)?.get(type);
      if (list) listenersOf.get(this).set(type, list.filter((l) => l.listener !== listener));
    }
    dispatchEvent(event) {
      event.target = event.currentTarget = this;
      const handler = this['on' + event.type];
      if (typeof handler === 'function') handler.call(this, event);
      for (const l of [...(listenersOf.get(this)?.get(event.type) || [])]) {
        if (l.once) this.removeEventListener(event.type, l.listener);
        if (typeof l.listener === 'function') l.listener.call(this, event); else l.listener.handleEvent(event);
        if (event._stop) break;
      }
      return !event.defaultPrevented;
    }
  }
  define('Event', Event);
  define('EventTarget', EventTarget);

  class AbortSignal extends EventTarget {
    constructor() { super(); this.aborted = false; this.reason = undefined; this.onabort = null; }
    throwIfAborted() { if (this.aborted) throw this.reason; }
    static abort(reason) { const c = new AbortController(); c.abort(reason); return c.signal; }
    static timeout(ms) {
      const c = new AbortController();
      setTimeout(() => c.abort(new DOMException('The operation timed out.', 'TimeoutError')), ms);
      return c.signal;
    }
    static any(signals) {
      const c = new AbortController();
      for (const s of signals) {
        if (s.aborted) { c.abort(s.reason); break; }
        s.addEventListener('abort', () => c.abort(s.reason), { once: true });
      }
      return c.signal;
    }
  }
  class AbortController {
    constructor() { this.signal = new AbortSignal(); }
    abort(reason) {
      const s = this.signal;
      if (s.aborted) return;
      s.aborted = true;
      s.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
      s.dispatchEvent(new Event('abort'));
    }
  }
  define('AbortSignal', AbortSignal);
  define('AbortController', AbortController);

  // ---------------------------------------------------------------- timers (within one event)
  // Timers fire in due order once no promise job is left; their delays are not slept (see
  // src/lib.rs), and none outlives the event: each event is a fresh instance.
  let timers = [];
  let nextTimerId = 1;
  let virtualNow = 0;
  const addTimer = (callback, ms, args, repeat) => {
    if (typeof callback !== 'function') throw new TypeError('the timer callback must be a function');
    const delay = Math.max(0, Number(ms) || 0);
    const id = nextTimerId++;
    timers.push({ id, due: virtualNow + delay, delay, callback, args, repeat });
    return id;
  };
  const clearTimer = (id) => { timers = timers.filter((t) => t.id !== id); };
  define('setTimeout', (callback, ms, ...args) => addTimer(callback, ms, args, false));
  define('setInterval', (callback, ms, ...args) => addTimer(callback, ms, args, true));
  define('clearTimeout', clearTimer);
  define('clearInterval', clearTimer);
  if (typeof G.queueMicrotask !== 'function') {
    define('queueMicrotask', (callback) => { Promise.resolve().then(() => callback()); });
  }
  const tick = () => {
    if (timers.length === 0) return false;
    let first = 0;
    for (let i = 1; i < timers.length; i++) if (timers[i].due < timers[first].due) first = i;
    const timer = timers[first];
    virtualNow = timer.due;
    if (timer.repeat) timer.due += Math.max(1, timer.delay); else timers.splice(first, 1);
    timer.callback(...timer.args);
    return true;
  };

  // ---------------------------------------------------------------- randomness and crypto
  // Random values read while the script loads would be the same in every event (the
  // snapshot keeps them): refused until the handler runs.
  let loading = true;
  const fillRandom = (bytes) => {
    if (loading) throw new Error('random values are not available while the script loads (at publish): they would be the same in every event; read them inside a handler');
    native.random(bytes);
  };
  const randomBytes = (n) => { const b = new Uint8Array(n); fillRandom(b); return b; };
  // While loading, Math.random is a fixed-seed generator (libraries call it at their top
  // level; what they get is the same in every event, as a snapshot means); crypto refuses.
  let seed = 0x2545f491;
  Math.random = () => {
    if (loading) {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    }
    const b = randomBytes(8);
    // 53 random bits.
    return ((b[0] & 0x1f) * 2 ** 48 + b[1] * 2 ** 40 + b[2] * 2 ** 32 + b[3] * 2 ** 24 + b[4] * 2 ** 16 + b[5] * 2 ** 8 + b[6]) / 2 ** 53;
  };
  const hex = (bytes) => Array.from(bytes, (b) => (b < 16 ? '0' : '') + b.toString(16)).join('');
  const hashName = (alg) => {
    const name = String(typeof alg === 'string' ? alg : alg && alg.name).toUpperCase();
    const known = { 'SHA-1': 'SHA-1', 'SHA-256': 'SHA-256', 'SHA-384': 'SHA-384', 'SHA-512': 'SHA-512', SHA1: 'SHA-1', SHA256: 'SHA-256', SHA384: 'SHA-384', SHA512: 'SHA-512' };
    if (!known[name]) throw new DOMException(`Unrecognized or unsupported algorithm: ${name}`, 'NotSupportedError');
    return known[name];
  };
  const blockBits = { 'SHA-1': 512, 'SHA-256': 512, 'SHA-384': 1024, 'SHA-512': 1024 };
  const secrets = new WeakMap();
  class CryptoKey {
    constructor() { throw new TypeError('Illegal constructor'); }
  }
  const makeKey = (bytes, algorithm, extractable, usages) => {
    const key = Object.create(CryptoKey.prototype);
    Object.defineProperties(key, {
      type: { value: 'secret', enumerable: true },
      extractable: { value: !!extractable, enumerable: true },
      algorithm: { value: algorithm, enumerable: true },
      usages: { value: Array.from(usages || []), enumerable: true },
    });
    secrets.set(key, bytes);
    return key;
  };
  const hmacKey = (key, usage) => {
    const bytes = secrets.get(key);
    if (!bytes || key.algorithm.name !== 'HMAC') throw new DOMException('the key is not an HMAC key', 'InvalidAccessError');
    if (!key.usages.includes(usage)) throw new DOMException(`the key does not allow '${usage}'`, 'InvalidAccessError');
    return bytes;
  };
  const algName = (alg) => String(typeof alg === 'string' ? alg : alg && alg.name).toUpperCase();
  const equalBytes = (a, b) => {
    if (a.byteLength !== b.byteLength) return false;
    let diff = 0;
    for (let i = 0; i < a.byteLength; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  };
  const asyncly = (f) => function (...args) {
    try { return Promise.resolve(f.apply(this, args)); } catch (e) { return Promise.reject(e); }
  };
  const subtle = {
    digest: asyncly((alg, data) => native.digest(hashName(alg), toBytes(data))),
    importKey: asyncly((format, keyData, alg, extractable, usages) => {
      if (algName(alg) !== 'HMAC') throw new DOMException(`importKey: only HMAC keys are supported, not ${algName(alg)}`, 'NotSupportedError');
      let bytes;
      if (format === 'raw') bytes = toBytes(keyData).slice();
      else if (format === 'jwk' && keyData && keyData.kty === 'oct') bytes = new Uint8Array(native.base64Decode(keyData.k.replace(/-/g, '+').replace(/_/g, '/')));
      else throw new DOMException(`importKey: format '${format}' is not supported for HMAC`, 'NotSupportedError');
      const hash = hashName(alg.hash);
      return makeKey(bytes, { name: 'HMAC', hash: { name: hash }, length: alg.length || bytes.length * 8 }, extractable, usages);
    }),
    generateKey: asyncly((alg, extractable, usages) => {
      if (algName(alg) !== 'HMAC') throw new DOMException(`generateKey: only HMAC keys are supported`, 'NotSupportedError');
      const hash = hashName(alg.hash);
      const length = alg.length || blockBits[hash];
      return makeKey(randomBytes(Math.ceil(length / 8)), { name: 'HMAC', hash: { name: hash }, length }, extractable, usages);
    }),
    exportKey: asyncly((format, key) => {
      const bytes = secrets.get(key);
      if (!bytes || !key.extractable) throw new DOMException('the key is not extractable', 'InvalidAccessError');
      if (format !== 'raw') throw new DOMException(`exportKey: format '${format}' is not supported`, 'NotSupportedError');
      return copyBuffer(bytes);
    }),
    sign: asyncly((alg, key, data) => {
      if (algName(alg) !== 'HMAC') throw new DOMException(`sign: only HMAC is supported`, 'NotSupportedError');
      return native.hmac(key.algorithm.hash.name, hmacKey(key, 'sign'), toBytes(data));
    }),
    verify: asyncly((alg, key, signature, data) => {
      if (algName(alg) !== 'HMAC') throw new DOMException(`verify: only HMAC is supported`, 'NotSupportedError');
      const expected = new Uint8Array(native.hmac(key.algorithm.hash.name, hmacKey(key, 'verify'), toBytes(data)));
      return equalBytes(expected, toBytes(signature));
    }),
    // Cloudflare's extension.
    timingSafeEqual(a, b) {
      const x = toBytes(a), y = toBytes(b);
      if (x.byteLength !== y.byteLength) throw new TypeError('Input buffers must have the same byte length');
      return equalBytes(x, y);
    },
  };
  const crypto = {
    subtle,
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
        throw new DOMException('getRandomValues takes an integer typed array', 'TypeMismatchError');
      }
      if (array.byteLength > 65536) throw new DOMException('getRandomValues takes at most 65536 bytes', 'QuotaExceededError');
      fillRandom(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    },
    randomUUID() {
      const b = randomBytes(16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = hex(b);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  };
  define('crypto', crypto);
  define('CryptoKey', CryptoKey);

  // ---------------------------------------------------------------- console
  const inspect = (value, depth, seen) => {
    if (typeof value === 'string') return depth === 0 ? value : JSON.stringify(value);
    if (typeof value === 'function') return `[Function ${value.name || '(anonymous)'}]`;
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'symbol') return value.toString();
    if (value === null || typeof value !== 'object') return String(value);
    if (value instanceof Error) return typeof value.stack === 'string' ? value.stack : `${value.name}: ${value.message}`;
    if (seen.includes(value)) return '[Circular]';
    if (depth > 3) return Array.isArray(value) ? '[Array]' : '[Object]';
    const next = [...seen, value];
    if (Array.isArray(value)) return `[ ${value.map((v) => inspect(v, depth + 1, next)).join(', ')} ]`;
    if (value instanceof Map) return `Map(${value.size}) { ${[...value].map(([k, v]) => `${inspect(k, depth + 1, next)} => ${inspect(v, depth + 1, next)}`).join(', ')} }`;
    if (value instanceof Set) return `Set(${value.size}) { ${[...value].map((v) => inspect(v, depth + 1, next)).join(', ')} }`;
    if (value instanceof Date) return value.toISOString();
    if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.length}) [ ${Array.from(value).slice(0, 50).join(', ')} ]`;
    const entries = Object.keys(value).map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${inspect(value[k], depth + 1, next)}`);
    const name = value.constructor && value.constructor !== Object && value.constructor.name ? `${value.constructor.name} ` : '';
    return entries.length ? `${name}{ ${entries.join(', ')} }` : `${name}{}`;
  };
  const format = (args) => {
    let rest = args;
    let out = '';
    if (typeof args[0] === 'string' && /%[sdifoOjc%]/.test(args[0]) && args.length > 1) {
      let i = 1;
      out = args[0].replace(/%[sdifoOjc%]/g, (m) => {
        if (m === '%%') return '%';
        if (i >= args.length) return m;
        const v = args[i++];
        switch (m) {
          case '%s': return typeof v === 'string' ? v : inspect(v, 1, []);
          case '%d': case '%i': return String(m === '%i' ? parseInt(v) : Number(v));
          case '%f': return String(parseFloat(v));
          case '%c': return '';
          default: return inspect(v, 1, []);
        }
      });
      rest = args.slice(i);
      return [out, ...rest.map((a) => inspect(a, 0, []))].join(' ');
    }
    return rest.map((a) => inspect(a, 0, [])).join(' ');
  };
  const emit = (level, message) => native.call(JSON.stringify({ op: 'log', level, message }));
  const counts = new Map();
  const started = new Map();
  const console = {
    log: (...a) => emit('info', format(a)),
    info: (...a) => emit('info', format(a)),
    debug: (...a) => emit('debug', format(a)),
    trace: (...a) => emit('debug', format(a) + '\n' + (new Error().stack || '')),
    warn: (...a) => emit('warn', format(a)),
    error: (...a) => emit('error', format(a)),
    assert: (ok, ...a) => { if (!ok) emit('error', 'Assertion failed' + (a.length ? ': ' + format(a) : '')); },
    dir: (v) => emit('info', inspect(v, 1, [])),
    table: (v) => emit('info', inspect(v, 1, [])),
    count: (label = 'default') => { counts.set(label, (counts.get(label) || 0) + 1); emit('info', `${label}: ${counts.get(label)}`); },
    countReset: (label = 'default') => counts.delete(label),
    time: (label = 'default') => started.set(label, Date.now()),
    timeLog: (label = 'default', ...a) => emit('info', format([`${label}: ${Date.now() - (started.get(label) || Date.now())}ms`, ...a])),
    timeEnd: (label = 'default') => { emit('info', `${label}: ${Date.now() - (started.get(label) || Date.now())}ms`); started.delete(label); },
    group: (...a) => { if (a.length) emit('info', format(a)); },
    groupCollapsed: (...a) => { if (a.length) emit('info', format(a)); },
    groupEnd: () => {},
  };
  define('console', console);

  // ---------------------------------------------------------------- structuredClone
  const clone = (value, seen) => {
    if (value === null || typeof value !== 'object') {
      if (typeof value === 'function' || typeof value === 'symbol') throw new DOMException(`${String(value)} could not be cloned.`, 'DataCloneError');
      return value;
    }
    if (seen.has(value)) return seen.get(value);
    let out;
    if (value instanceof Date) out = new Date(value.getTime());
    else if (value instanceof RegExp) out = new RegExp(value.source, value.flags);
    else if (value instanceof ArrayBuffer) out = value.slice(0);
    else if (ArrayBuffer.isView(value)) {
      const buffer = clone(value.buffer, seen);
      out = value instanceof DataView ? new DataView(buffer, value.byteOffset, value.byteLength) : new value.constructor(buffer, value.byteOffset, value.length);
    } else if (value instanceof Map) {
      out = new Map(); seen.set(value, out);
      for (const [k, v] of value) out.set(clone(k, seen), clone(v, seen));
      return out;
    } else if (value instanceof Set) {
      out = new Set(); seen.set(value, out);
      for (const v of value) out.add(clone(v, seen));
      return out;
    } else if (value instanceof Error) {
      out = new (G[value.name] || Error)(value.message);
      if (value.stack) out.stack = value.stack;
    } else if (value instanceof Blob) out = value.slice(0, value.size, value.type);
    else if (Array.isArray(value)) {
      out = []; seen.set(value, out);
      for (let i = 0; i < value.length; i++) out[i] = clone(value[i], seen);
      return out;
    } else if (value instanceof Boolean || value instanceof Number || value instanceof String) out = Object(value.valueOf());
    else {
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) throw new DOMException(`${Object.prototype.toString.call(value)} could not be cloned.`, 'DataCloneError');
      }
      out = {}; seen.set(value, out);
      for (const k of Object.keys(value)) out[k] = clone(value[k], seen);
      return out;
    }
    seen.set(value, out);
    return out;
  };
  define('structuredClone', (value) => clone(value, new Map()));

  // ---------------------------------------------------------------- URLSearchParams and URL
  const formEncode = (s) =>
    encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const formDecode = (s) => {
    const t = s.replace(/\+/g, ' ');
    try { return decodeURIComponent(t); } catch { return t.replace(/%([0-9a-fA-F]{2})/g, (m, h) => String.fromCharCode(parseInt(h, 16))); }
  };
  const paramsUrl = new WeakMap();
  class URLSearchParams {
    constructor(init = '') {
      this._list = [];
      if (init instanceof URLSearchParams) this._list = init._list.map(([k, v]) => [k, v]);
      else if (typeof init === 'object' && init !== null) {
        if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const p = [...pair];
            if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
            this._list.push([String(p[0]), String(p[1])]);
          }
        } else for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
      } else this._parse(String(init));
    }
    _parse(s) {
      this._list = [];
      if (s.startsWith('?')) s = s.slice(1);
      for (const part of s.split('&')) {
        if (!part) continue;
        const eq = part.indexOf('=');
        this._list.push(eq < 0 ? [formDecode(part), ''] : [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))]);
      }
    }
    _update() {
      const url = paramsUrl.get(this);
      if (url) { const s = this.toString(); url._search = s ? '?' + s : ''; }
    }
    get size() { return this._list.length; }
    append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
    delete(k, v) { k = String(k); this._list = this._list.filter(([a, b]) => a !== k || (v !== undefined && b !== String(v))); this._update(); }
    get(k) { k = String(k); const e = this._list.find(([a]) => a === k); return e ? e[1] : null; }
    getAll(k) { k = String(k); return this._list.filter(([a]) => a === k).map(([, b]) => b); }
    has(k, v) { k = String(k); return this._list.some(([a, b]) => a === k && (v === undefined || b === String(v))); }
    set(k, v) {
      k = String(k); v = String(v);
      const i = this._list.findIndex(([a]) => a === k);
      if (i < 0) this._list.push([k, v]);
      else { this._list[i][1] = v; this._list = this._list.filter(([a], j) => a !== k || j === i); }
      this._update();
    }
    sort() { this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._update(); }
    forEach(f, self) { for (const [k, v] of this._list) f.call(self, v, k, this); }
    *entries() { for (const [k, v] of this._list) yield [k, v]; }
    *keys() { for (const [k] of this._list) yield k; }
    *values() { for (const [, v] of this._list) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map(([k, v]) => formEncode(k) + '=' + formEncode(v)).join('&'); }
    get [Symbol.toStringTag]() { return 'URLSearchParams'; }
  }
  define('URLSearchParams', URLSearchParams);

  const special = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21', 'file:': '' };
  // Percent-encodes what the URL standard's sets encode (and any non-ASCII as UTF-8).
  const encodeSet = (s, extra) =>
    s.replace(/[^\x21-\x7e]|[\x22\x3c\x3e\x60]/g, (c) => (c === ' ' && extra === 'form' ? '+' : encodeURIComponent(c)))
      .replace(extra || /(?!)/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const encodePath = (s) => encodeSet(s, /[#?{}]/g).replace(/%25(?![0-9a-fA-F]{2})/g, '%25');
  const encodeQuery = (s, isSpecial) => encodeSet(s, isSpecial ? /['#]/g : /[#]/g);
  const encodeFragment = (s) => encodeSet(s);
  const encodeUserinfo = (s) => encodeSet(s, /[/:;=@[\\\]^|{}?#]/g);
  const normalizePath = (path, isSpecial) => {
    const input = path.split('/');
    const out = [];
    for (let i = 0; i < input.length; i++) {
      const seg = input[i];
      const last = i === input.length - 1;
      const lower = seg.toLowerCase();
      if (seg === '..' || lower === '.%2e' || lower === '%2e.' || lower === '%2e%2e') {
        if (out.length > 1) out.pop();
        if (last) out.push('');
      } else if (seg === '.' || lower === '%2e') {
        if (last) out.push('');
      } else out.push(seg);
    }
    if (isSpecial && out[0] !== '') out.unshift('');
    return out.join('/');
  };
  const parseHost = (host, isSpecial) => {
    if (host.startsWith('[')) {
      if (!host.endsWith(']')) throw new TypeError('Invalid URL: bad IPv6 host');
      return host.toLowerCase();
    }
    let h = host;
    if (isSpecial) {
      try { h = decodeURIComponent(h); } catch { throw new TypeError('Invalid URL: bad host'); }
      h = h.toLowerCase();
      if (/[\x00-\x20#%/:<>?@[\\\]^|]/.test(h)) throw new TypeError(`Invalid URL: forbidden host '${host}'`);
      if (/^[0-9.]+$/.test(h) && h.split('.').length === 4 && h.split('.').some((p) => p.length > 1 && p[0] === '0')) {
        h = h.split('.').map((p) => String(parseInt(p, p.length > 1 && p[0] === '0' ? 8 : 10))).join('.');
      }
    }
    return h;
  };
  const URL_RE = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s;
  // Parsed absolute URLs by their text: an event parses the same few URLs several times
  // (the dispatcher's, the request's), and parsing costs more than copying.
  const parsed = new Map();
  const FIELDS = ['_protocol', '_username', '_password', '_hostname', '_port', '_pathname', '_search', '_hash', '_opaque'];
  class URL {
    constructor(url, base) {
      const text = String(url);
      const known = base === undefined ? parsed.get(text) : undefined;
      if (known) { for (const f of FIELDS) this[f] = known[f]; return; }
      let input = text;
      if (input.charCodeAt(0) <= 0x20 || input.charCodeAt(input.length - 1) <= 0x20) input = input.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '');
      if (input.includes('\t') || input.includes('\n') || input.includes('\r')) input = input.replace(/[\t\n\r]/g, '');
      let baseUrl = null;
      if (base !== undefined) baseUrl = base instanceof URL ? base : new URL(base);
      const m = URL_RE.exec(input);
      if (m) this._parseAbsolute(m[1].toLowerCase() + ':', m[2], baseUrl);
      else if (baseUrl) this._parseRelative(input, baseUrl);
      else throw new TypeError(`Invalid URL: '${url}'`);
      if (base === undefined) {
        if (parsed.size >= 64) parsed.delete(parsed.keys().next().value);
        const entry = {};
        for (const f of FIELDS) entry[f] = this[f];
        parsed.set(text, entry);
      }
    }
    _reset(protocol) {
      this._protocol = protocol; this._username = ''; this._password = ''; this._hostname = ''; this._port = '';
      this._pathname = ''; this._search = ''; this._hash = ''; this._opaque = false;
    }
    _splitTail(rest) {
      let hash = '', search = '';
      const h = rest.indexOf('#');
      if (h >= 0) { hash = rest.slice(h); rest = rest.slice(0, h); }
      const q = rest.indexOf('?');
      if (q >= 0) { search = rest.slice(q); rest = rest.slice(0, q); }
      this._search = search.length > 1 ? '?' + encodeQuery(search.slice(1), this._protocol in special) : '';
      this._hash = hash.length > 1 ? '#' + encodeFragment(hash.slice(1)) : '';
      return rest;
    }
    _parseAuthority(rest) {
      const isSpecial = this._protocol in special;
      const end = rest.search(isSpecial ? /[/\\?#]/ : /[/?#]/);
      const authority = end < 0 ? rest : rest.slice(0, end);
      const tail = end < 0 ? '' : rest.slice(end);
      let hostport = authority;
      const at = authority.lastIndexOf('@');
      if (at >= 0) {
        const userinfo = authority.slice(0, at);
        hostport = authority.slice(at + 1);
        const colon = userinfo.indexOf(':');
        this._username = encodeUserinfo(colon < 0 ? userinfo : userinfo.slice(0, colon));
        this._password = colon < 0 ? '' : encodeUserinfo(userinfo.slice(colon + 1));
      }
      const pm = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/s.exec(hostport);
      const port = pm[2] === undefined ? '' : pm[2];
      if (port !== '' && !/^[0-9]+$/.test(port)) throw new TypeError(`Invalid URL: bad port '${port}'`);
      if (port !== '' && Number(port) > 65535) throw new TypeError(`Invalid URL: port out of range '${port}'`);
      this._hostname = parseHost(pm[1], isSpecial);
      if (isSpecial && this._protocol !== 'file:' && this._hostname === '') throw new TypeError('Invalid URL: empty host');
      this._port = port === '' || String(Number(port)) === special[this._protocol] ? '' : String(Number(port));
      return tail;
    }
    _setPath(path) {
      const isSpecial = this._protocol in special;
      if (isSpecial) path = path.replace(/\\/g, '/');
      this._pathname = normalizePath(encodePath(path), isSpecial);
      if (isSpecial && this._pathname === '') this._pathname = '/';
    }
    _parseAbsolute(protocol, rest, base) {
      this._reset(protocol);
      const isSpecial = protocol in special;
      if (isSpecial && base && base._protocol === protocol && !/^[/\\]/.test(rest)) {
        return this._parseRelative(rest, base);
      }
      rest = this._splitTail(rest);
      if (isSpecial ? /^[/\\]{2}/.test(rest) || protocol !== 'file:' : rest.startsWith('//')) {
        rest = this._parseAuthority(rest.replace(/^[/\\]*/, isSpecial ? '' : '').replace(/^\/\//, ''));
        this._setPath(rest);
      } else if (rest.startsWith('/')) this._setPath(rest);
      else { this._opaque = true; this._pathname = encodeSet(rest); }
    }
    _parseRelative(input, base) {
      if (base._opaque) {
        if (input.startsWith('#')) { Object.assign(this, base); this._hash = input.length > 1 ? '#' + encodeFragment(input.slice(1)) : ''; return; }
        throw new TypeError(`Invalid URL: '${input}' relative to an opaque base`);
      }
      this._reset(base._protocol);
      const isSpecial = this._protocol in special;
      if (isSpecial ? /^[/\\]{2}/.test(input) : input.startsWith('//')) {
        return this._parseAbsolute(this._protocol, input, null);
      }
      this._username = base._username; this._password = base._password;
      this._hostname = base._hostname; this._port = base._port;
      const rest = this._splitTail(input);
      const hasQuery = input.replace(/#.*$/s, '').includes('?');
      if (rest === '') {
        this._pathname = base._pathname;
        if (!hasQuery) this._search = base._search;
      } else if (isSpecial ? /^[/\\]/.test(rest) : rest.startsWith('/')) this._setPath(rest);
      else this._setPath(base._pathname.slice(0, base._pathname.lastIndexOf('/') + 1) + rest);
    }
    get protocol() { return this._protocol; }
    set protocol(v) { const p = String(v).replace(/:.*$/, '').toLowerCase() + ':'; if ((p in special) === (this._protocol in special)) this._protocol = p; }
    get username() { return this._username; }
    set username(v) { this._username = encodeUserinfo(String(v)); }
    get password() { return this._password; }
    set password(v) { this._password = encodeUserinfo(String(v)); }
    get hostname() { return this._hostname; }
    set hostname(v) { if (!this._opaque) this._hostname = parseHost(String(v), this._protocol in special); }
    get port() { return this._port; }
    set port(v) { const p = String(v); if (p === '') this._port = ''; else if (/^[0-9]+/.test(p)) { const n = String(parseInt(p, 10)); this._port = n === special[this._protocol] ? '' : n; } }
    get host() { return this._port ? `${this._hostname}:${this._port}` : this._hostname; }
    set host(v) { const m = /^([^:]*)(?::(\d*))?/.exec(String(v)); this.hostname = m[1]; if (m[2] !== undefined) this.port = m[2]; }
    get origin() { return this._protocol in special && this._protocol !== 'file:' ? `${this._protocol}//${this.host}` : 'null'; }
    get pathname() { return this._pathname; }
    set pathname(v) { if (!this._opaque) { const p = String(v); this._setPath(p.startsWith('/') || !(this._protocol in special) ? p : '/' + p); } }
    get search() { return this._search.length > 1 ? this._search : ''; }
    set search(v) {
      const s = String(v).replace(/^\?/, '');
      this._search = s ? '?' + encodeQuery(s, this._protocol in special) : '';
      if (this._params) this._params._parse(this._search);
    }
    get searchParams() {
      if (!this._params) { this._params = new URLSearchParams(this._search); paramsUrl.set(this._params, this); }
      return this._params;
    }
    get hash() { return this._hash.length > 1 ? this._hash : ''; }
    set hash(v) { const s = String(v).replace(/^#/, ''); this._hash = s ? '#' + encodeFragment(s) : ''; }
    get href() {
      const auth = this._username || this._password ? `${this._username}${this._password ? ':' + this._password : ''}@` : '';
      const slashes = this._opaque ? '' : this._hostname !== '' || this._protocol in special ? '//' : '';
      return `${this._protocol}${slashes}${auth}${this.host}${this._pathname}${this.search}${this.hash}`;
    }
    set href(v) { const u = new URL(v); Object.assign(this, u); if (this._params) this._params._parse(this._search); }
    toString() { return this.href; }
    toJSON() { return this.href; }
    static canParse(url, base) { try { new URL(url, base); return true; } catch { return false; } }
    static parse(url, base) { try { return new URL(url, base); } catch { return null; } }
    get [Symbol.toStringTag]() { return 'URL'; }
  }
  define('URL', URL);

  // ---------------------------------------------------------------- Blob, File, FormData
  const blobBytes = new WeakMap();
  class Blob {
    constructor(parts = [], options = {}) {
      const chunks = [];
      for (const part of parts) {
        if (part instanceof Blob) chunks.push(blobBytes.get(part));
        else if (part instanceof ArrayBuffer || ArrayBuffer.isView(part)) chunks.push(toBytes(part).slice());
        else chunks.push(utf8(part));
      }
      blobBytes.set(this, chunks.length === 1 ? chunks[0] : concat(chunks));
      const type = options.type === undefined ? '' : String(options.type);
      this._type = /^[\x20-\x7e]*$/.test(type) ? type.toLowerCase() : '';
    }
    get size() { return blobBytes.get(this).byteLength; }
    get type() { return this._type; }
    slice(start = 0, end = this.size, type = '') {
      const b = new Blob([], { type });
      blobBytes.set(b, blobBytes.get(this).slice(start, end));
      return b;
    }
    async arrayBuffer() { return copyBuffer(blobBytes.get(this)); }
    async bytes() { return blobBytes.get(this).slice(); }
    async text() { return fromUtf8(blobBytes.get(this)); }
    get [Symbol.toStringTag]() { return 'Blob'; }
  }
  class File extends Blob {
    constructor(parts, name, options = {}) {
      super(parts, options);
      this._name = String(name);
      this._lastModified = options.lastModified === undefined ? Date.now() : Number(options.lastModified);
    }
    get name() { return this._name; }
    get lastModified() { return this._lastModified; }
    get [Symbol.toStringTag]() { return 'File'; }
  }
  define('Blob', Blob);
  define('File', File);

  const entryValue = (value, filename) => {
    if (value instanceof Blob) {
      if (!(value instanceof File) || filename !== undefined) {
        return new File([value], filename !== undefined ? filename : value instanceof File ? value.name : 'blob', { type: value.type });
      }
      return value;
    }
    return String(value);
  };
  class FormData {
    constructor(form) {
      if (form !== undefined) throw new TypeError('FormData: a form element is not supported');
      this._list = [];
    }
    append(k, v, filename) { this._list.push([String(k), entryValue(v, filename)]); }
    delete(k) { k = String(k); this._list = this._list.filter(([a]) => a !== k); }
    get(k) { k = String(k); const e = this._list.find(([a]) => a === k); return e ? e[1] : null; }
    getAll(k) { k = String(k); return this._list.filter(([a]) => a === k).map(([, b]) => b); }
    has(k) { k = String(k); return this._list.some(([a]) => a === k); }
    set(k, v, filename) {
      k = String(k);
      const value = entryValue(v, filename);
      const i = this._list.findIndex(([a]) => a === k);
      if (i < 0) this._list.push([k, value]);
      else { this._list[i][1] = value; this._list = this._list.filter(([a], j) => a !== k || j === i); }
    }
    forEach(f, self) { for (const [k, v] of this._list) f.call(self, v, k, this); }
    *entries() { for (const [k, v] of this._list) yield [k, v]; }
    *keys() { for (const [k] of this._list) yield k; }
    *values() { for (const [, v] of this._list) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return 'FormData'; }
  }
  define('FormData', FormData);

  const multipartEncode = (form) => {
    const boundary = '----weftFormBoundary' + hex(randomBytes(12));
    const chunks = [];
    const escape = (s) => s.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
    for (const [name, value] of form._list) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"`;
      if (value instanceof File) {
        head += `; filename="${escape(value.name)}"\r\nContent-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`;
        chunks.push(utf8(head), blobBytes.get(value), utf8('\r\n'));
      } else chunks.push(utf8(`${head}\r\n\r\n${value.replace(/\r?\n|\r/g, '\r\n')}\r\n`));
    }
    chunks.push(utf8(`--${boundary}--\r\n`));
    return { bytes: concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
  };
  const indexOf = (bytes, needle, from) => {
    outer: for (let i = from; i <= bytes.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  };
  const multipartDecode = (bytes, contentType) => {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    if (!m) throw new TypeError('multipart/form-data without a boundary');
    const delimiter = utf8('--' + (m[1] || m[2]).trim());
    const form = new FormData();
    let at = indexOf(bytes, delimiter, 0);
    if (at < 0) throw new TypeError('multipart/form-data: no part found');
    for (;;) {
      at += delimiter.length;
      if (bytes[at] === 45 && bytes[at + 1] === 45) break;
      at += 2;
      const headEnd = indexOf(bytes, utf8('\r\n\r\n'), at);
      if (headEnd < 0) throw new TypeError('multipart/form-data: truncated part');
      const head = fromUtf8(bytes.subarray(at, headEnd));
      const next = indexOf(bytes, delimiter, headEnd + 4);
      if (next < 0) throw new TypeError('multipart/form-data: missing closing boundary');
      const body = bytes.subarray(headEnd + 4, next - 2);
      const name = /name="([^"]*)"/i.exec(head);
      const filename = /filename="([^"]*)"/i.exec(head);
      const type = /content-type:\s*([^\r\n]*)/i.exec(head);
      if (name) {
        if (filename) form.append(name[1], new File([body], filename[1], { type: type ? type[1] : '' }));
        else form.append(name[1], fromUtf8(body));
      }
      at = next;
    }
    return form;
  };

  // ---------------------------------------------------------------- Headers
  const headerName = (name) => {
    const n = String(name);
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n)) throw new TypeError(`Invalid header name: '${n}'`);
    return n.toLowerCase();
  };
  const headerValue = (value) => {
    const v = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
    if (/[\0\r\n]/.test(v)) throw new TypeError(`Invalid header value: '${v}'`);
    return v;
  };
  class Headers {
    constructor(init) {
      this._map = new Map();
      this._cookies = [];
      if (init == null) return;
      if (init instanceof Headers) {
        for (const [k, v] of init._map) this._map.set(k, v);
        this._cookies = init._cookies.slice();
      } else if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError('Headers: each header must be a [name, value] pair');
          this.append(p[0], p[1]);
        }
      } else if (typeof init === 'object') for (const k of Object.keys(init)) this.append(k, init[k]);
      else throw new TypeError('Headers: unsupported init');
    }
    append(name, value) {
      const k = headerName(name), v = headerValue(value);
      if (k === 'set-cookie') this._cookies.push(v);
      const old = this._map.get(k);
      this._map.set(k, old === undefined ? v : `${old}, ${v}`);
    }
    set(name, value) {
      const k = headerName(name), v = headerValue(value);
      if (k === 'set-cookie') this._cookies = [v];
      this._map.set(k, v);
    }
    get(name) { const v = this._map.get(headerName(name)); return v === undefined ? null : v; }
    has(name) { return this._map.has(headerName(name)); }
    delete(name) { const k = headerName(name); this._map.delete(k); if (k === 'set-cookie') this._cookies = []; }
    getSetCookie() { return this._cookies.slice(); }
    forEach(f, self) { for (const [k, v] of this.entries()) f.call(self, v, k, this); }
    *entries() { for (const k of [...this._map.keys()].sort()) yield [k, this._map.get(k)]; }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return 'Headers'; }
  }
  define('Headers', Headers);

  // ---------------------------------------------------------------- bodies, Request, Response
  // A body is kept as given (string, bytes, Blob, FormData, URLSearchParams) and converted
  // when read, so that a FormData handed to a Request reads back without a multipart round trip.
  const extractBody = (body) => {
    if (body == null) return { source: null, type: null };
    if (typeof body === 'string') return { source: body, type: 'text/plain;charset=UTF-8' };
    if (body instanceof URLSearchParams) return { source: body.toString(), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
    if (body instanceof FormData) return { source: body, type: null };
    if (body instanceof Blob) return { source: blobBytes.get(body), type: body.type || null };
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { source: toBytes(body).slice(), type: null };
    if (typeof body === 'object' && typeof body.getReader === 'function') throw new TypeError('ReadableStream bodies are not supported by weft');
    return { source: String(body), type: 'text/plain;charset=UTF-8' };
  };
  const bodyBytes = (source) => {
    if (source == null) return new Uint8Array(0);
    if (typeof source === 'string') return utf8(source);
    if (source instanceof FormData) return multipartEncode(source).bytes;
    return source;
  };
  class Body {
    _initBody(body, headers) {
      const { source, type } = extractBody(body);
      this._source = source;
      this._used = false;
      if (source instanceof FormData) {
        // The boundary must be in the content type before anyone reads the headers.
        const encoded = multipartEncode(source);
        this._source = encoded.bytes;
        this._form = source;
        if (!headers.has('content-type')) headers.set('content-type', encoded.type);
      } else if (type && !headers.has('content-type')) headers.set('content-type', type);
    }
    get body() {
      if (this._source == null) return null;
      const self = this;
      // A minimal stream: one chunk. Enough for code that checks `body` or reads it once.
      return {
        locked: false,
        getReader() {
          let done = false;
          return {
            read: async () => { if (done) return { done: true, value: undefined }; done = true; return { done: false, value: self._take() }; },
            releaseLock() {}, cancel: async () => { done = true; }, closed: Promise.resolve(),
          };
        },
      };
    }
    get bodyUsed() { return this._used; }
    _take() {
      if (this._used) throw new TypeError('Body has already been used');
      this._used = true;
      return bodyBytes(this._source);
    }
    async arrayBuffer() { return copyBuffer(this._take()); }
    async bytes() { return this._take().slice(); }
    async text() {
      if (typeof this._source === 'string' && !this._used) { this._used = true; return this._source; }
      return fromUtf8(this._take());
    }
    async json() { return JSON.parse(await this.text()); }
    async blob() { const type = this.headers.get('content-type') || ''; return new Blob([this._take()], { type }); }
    async formData() {
      if (this._form && !this._used) { this._used = true; return this._form; }
      const type = this.headers.get('content-type') || '';
      if (/^multipart\/form-data/i.test(type)) return multipartDecode(this._take(), type);
      if (/^application\/x-www-form-urlencoded/i.test(type)) {
        const form = new FormData();
        for (const [k, v] of new URLSearchParams(fromUtf8(this._take()))) form.append(k, v);
        return form;
      }
      throw new TypeError(`Could not parse content as FormData (content-type '${type}')`);
    }
  }

  const METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH']);
  class Request extends Body {
    constructor(input, init = {}) {
      super();
      const from = input instanceof Request ? input : null;
      this.url = from ? from.url : new URL(String(input)).href;
      const method = init.method !== undefined ? String(init.method) : from ? from.method : 'GET';
      this.method = METHODS.has(method.toUpperCase()) ? method.toUpperCase() : method;
      this.headers = new Headers(init.headers !== undefined ? init.headers : from ? from.headers : undefined);
      this.signal = init.signal || (from && from.signal) || new AbortController().signal;
      this.redirect = init.redirect || (from && from.redirect) || 'follow';
      this.credentials = 'same-origin';
      this.mode = 'cors';
      this.cache = 'default';
      this.referrer = 'about:client';
      this.integrity = '';
      this.keepalive = false;
      this.cf = init.cf || (from && from.cf) || undefined;
      let body = init.body !== undefined ? init.body : null;
      if (body === null && from && init.body === undefined && from._source != null) body = from._take();
      // GitBook's runtime builds a GET with an empty `fetch-body`; bodies of GET and HEAD are dropped.
      if (this.method === 'GET' || this.method === 'HEAD') body = null;
      this._initBody(body, this.headers);
    }
    clone() {
      if (this._used) throw new TypeError('Request body is already used');
      const r = new Request(this.url, { method: this.method, headers: this.headers, signal: this.signal, redirect: this.redirect, body: this._form || this._source });
      return r;
    }
    get [Symbol.toStringTag]() { return 'Request'; }
  }
  define('Request', Request);

  const REDIRECTS = new Set([301, 302, 303, 307, 308]);
  const NULL_BODY = new Set([101, 204, 205, 304]);
  class Response extends Body {
    constructor(body = null, init = {}) {
      super();
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`Response status ${init.status} is outside 200-599`);
      if (body != null && NULL_BODY.has(status)) throw new TypeError(`Response with status ${status} cannot have a body`);
      this.status = status;
      this.statusText = init.statusText === undefined ? '' : String(init.statusText);
      this.headers = new Headers(init.headers);
      this.type = 'default';
      this.url = '';
      this.redirected = false;
      this.webSocket = null;
      this._initBody(body, this.headers);
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    clone() {
      if (this._used) throw new TypeError('Response body is already used');
      const r = new Response(this._form || this._source, { status: this.status, statusText: this.statusText, headers: this.headers });
      r.url = this.url;
      return r;
    }
    static json(data, init = {}) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError('Response.json: the value is not JSON-serialisable');
      const headers = new Headers(init.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(text, { ...init, headers });
    }
    static redirect(url, status = 302) {
      if (!REDIRECTS.has(status)) throw new RangeError(`Invalid redirect status ${status}`);
      return new Response(null, { status, headers: { location: new URL(String(url)).href } });
    }
    static error() { const r = new Response(null, { status: 200 }); r.type = 'error'; r.status = 0; return r; }
    get [Symbol.toStringTag]() { return 'Response'; }
  }
  define('Response', Response);

  // ---------------------------------------------------------------- fetch (the http.fetch host op)
  const MAX_REDIRECTS = 20;
  const fetch = async (input, init = {}) => {
    let request = new Request(input, init);
    const signal = request.signal;
    if (signal.aborted) throw signal.reason;
    let bytes = request._source == null ? null : request._take();
    for (let hops = 0; ; hops++) {
      const headers = {};
      for (const [k, v] of request.headers) headers[k] = v;
      const call = { op: 'http.fetch', request: { method: request.method, url: request.url, headers } };
      if (bytes) call.request.body = native.base64Encode(bytes);
      const answer = native.call(JSON.stringify(call));
      if (typeof answer === 'number') throw new TypeError(`fetch ${request.url}: refused by the host (code ${answer})`);
      const result = JSON.parse(answer);
      if (result.error) throw new TypeError(`fetch ${request.url}: ${result.error.message} (${result.error.code})`);
      const { status, headers: responseHeaders, body } = result.ok;
      if (signal.aborted) throw signal.reason;
      const location = responseHeaders && (responseHeaders.location || responseHeaders.Location);
      if (REDIRECTS.has(status) && location && request.redirect !== 'manual') {
        if (request.redirect === 'error') throw new TypeError(`fetch ${request.url}: redirected while redirect is 'error'`);
        if (hops >= MAX_REDIRECTS) throw new TypeError(`fetch ${request.url}: too many redirects`);
        const next = new URL(location, request.url).href;
        const keep = status === 307 || status === 308;
        request = new Request(next, { method: keep ? request.method : request.method === 'HEAD' ? 'HEAD' : 'GET', headers: request.headers, signal, redirect: request.redirect });
        if (!keep) { bytes = null; request.headers.delete('content-type'); request.headers.delete('content-length'); }
        continue;
      }
      const data = body ? new Uint8Array(native.base64Decode(body)) : null;
      const response = new Response(NULL_BODY.has(status) || status < 200 ? null : data, { status: status < 200 ? 200 : status, headers: responseHeaders || {} });
      response.status = status;
      response.url = request.url;
      response.redirected = hops > 0;
      return response;
    }
  };
  define('fetch', fetch);

  // ---------------------------------------------------------------- Workers globals
  const fetchListeners = [];
  define('addEventListener', (type, listener) => { if (type === 'fetch') fetchListeners.push(listener); });
  define('removeEventListener', () => {});
  define('self', G);
  define('navigator', { userAgent: 'weft' });

  // ---------------------------------------------------------------- the dispatcher
  // Builds what GitBook's dispatcher sends (a POST to `/v1` whose form data holds `event`,
  // `environment` and `fetch-body`), calls the integration, and reports the outcome.
  let handler = null;
  const DISPATCH_URL = 'https://integration.weft/v1';
  new URL(DISPATCH_URL);
  const statusCode = (s) => (Number.isInteger(s) && s >= 400 && s <= 599 ? s : 500);
  const errorText = (e) => (e instanceof Error ? `${e.name === 'Error' ? '' : e.name + ': '}${e.message}` : `uncaught ${inspect(e, 1, [])}`);
  // The outcome is handed over once no promise job is left (see `tick`), so that rejections
  // nobody handled by then are known.
  let finished = null;
  let isFetchEvent = false;
  const unhandled = new Map();
  const report = (header, body) => { if (!finished) finished = { header, body }; };
  const finalize = () => {
    let { header, body } = finished;
    for (const reason of unhandled.values()) {
      const text = reason instanceof Error && typeof reason.stack === 'string' ? reason.stack : errorText(reason);
      console.error(`Uncaught (in promise) ${text}`);
      // A response already made is still answered (as Workers do); another event fails.
      if (!isFetchEvent && !header.error) { header = { error: { code: 500, message: `unhandled rejection: ${errorText(reason)}` } }; body = null; }
    }
    native.finish(JSON.stringify(header), body || new Uint8Array(0));
  };
  const fail = (e) => {
    const text = errorText(e);
    if (/out of memory/.test(text)) native.abort();
    console.error(e instanceof Error && typeof e.stack === 'string' ? e.stack : text);
    report({ error: { code: 500, message: text } });
  };

  const weft = {
    // Called once, after the bundle: finds what handles events.
    adopt(namespace) {
      loading = false;
      const exported = namespace.default;
      if (exported && typeof exported.fetch === 'function') handler = (req, env, ctx) => exported.fetch(req, env, ctx);
      else if (typeof exported === 'function' && exported.prototype && typeof exported.prototype.fetch === 'function') {
        handler = (req, env, ctx) => new exported(ctx, env).fetch(req);
      } else if (fetchListeners.length > 0) {
        handler = (request, env, ctx) => new Promise((resolve, reject) => {
          let responded = false;
          const event = {
            type: 'fetch', request,
            respondWith(p) { responded = true; Promise.resolve(p).then(resolve, reject); },
            waitUntil: (p) => ctx.waitUntil(p),
            passThroughOnException() {},
          };
          for (const l of fetchListeners) l(event);
          if (!responded) reject(new Error('the fetch listener did not call respondWith'));
        });
      } else {
        return 'the script handles no events: it needs a default export with a fetch(request, env, ctx) method ' +
          "(GitBook's createIntegration) or an addEventListener('fetch', …) listener";
      }
      return null;
    },
    dispatch(eventJson, environmentJson, body) {
      timers = [];
      virtualNow = 0;
      finished = null;
      unhandled.clear();
      let isFetch = false;
      try {
        const event = JSON.parse(eventJson);
        isFetch = isFetchEvent = !!event && event.type === 'fetch';
        const form = new FormData();
        form.append('event', eventJson);
        form.append('environment', environmentJson);
        if (isFetch && body.byteLength > 0) {
          const text = native.utf8Decode(body, true);
          form.append('fetch-body', text !== undefined ? text : new Blob([body]));
        }
        const request = new Request(DISPATCH_URL, { method: 'POST' });
        request._form = form;
        request._source = form;
        const pending = [];
        const ctx = { waitUntil(p) { pending.push(Promise.resolve(p)); }, passThroughOnException() {}, props: {} };
        Promise.resolve()
          .then(() => handler(request, {}, ctx))
          .then(async (response) => {
            // Every promise handed to waitUntil is awaited before the event ends, even ones
            // added while waiting.
            for (let seen = 0; seen < pending.length;) {
              const batch = pending.slice(seen);
              seen = pending.length;
              for (const r of await Promise.allSettled(batch)) {
                if (r.status === 'rejected') console.error(`waitUntil: ${r.reason && typeof r.reason.stack === 'string' ? r.reason.stack : errorText(r.reason)}`);
              }
            }
            if (!(response instanceof Response)) throw new TypeError(`the handler answered ${inspect(response, 1, [])}, not a Response`);
            if (isFetch) {
              const headers = {};
              for (const [k, v] of response.headers) headers[k] = v;
              report({ response: { status: response.status, headers } }, response._source == null ? null : response._take());
            } else if (response.ok) report({});
            else {
              const text = (await response.text()).slice(0, 2000);
              let message = text || `the integration answered ${response.status}`;
              try {
                // GitBook's runtime answers {"error": "…"}; weft's API shape is {"error": {"message": "…"}}.
                const j = JSON.parse(text);
                if (j && typeof j.error === 'string') message = j.error;
                else if (j && j.error && typeof j.error.message === 'string') message = j.error.message;
              } catch {}
              report({ error: { code: statusCode(response.status), message } });
            }
          })
          .catch(fail);
      } catch (e) {
        fail(e);
      }
    },
    // Called when no promise job is left: hands over the outcome, or fires the next timer.
    tick() {
      if (finished) { finalize(); return true; }
      return tick();
    },
    // The engine's promise rejection tracker.
    rejection(promise, reason, handled) {
      if (handled) unhandled.delete(promise); else unhandled.set(promise, reason);
    },
  };
  Object.defineProperty(G, '__weft', { value: Object.freeze(weft) });
  delete G.__native;
})(globalThis.__native);
