// Finds where a JSON path such as applications[0].microservices[1].port
// sits in the text of a JSON document, so the SLA editor can point at the
// field the server's validator named.

/** parsePath splits "a[0].b.c[2]" into ['a', 0, 'b', 'c', 2]. */
export function parsePath(path) {
  const out = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m;
  while ((m = re.exec(path)) !== null) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}

const PATH_PREFIX = /^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*: /;

/**
 * splitProblems splits a validator message listing several problems
 * ("a.b: msg; a.c: msg") into [{path, message}]; a message that names no
 * path comes back as one entry with path ''.
 */
export function splitProblems(message) {
  const parts = String(message).split('; ');
  const out = [];
  for (const p of parts) {
    const m = PATH_PREFIX.exec(p);
    if (m) out.push({ path: m[0].slice(0, -2), message: p.slice(m[0].length) });
    else if (out.length) out[out.length - 1].message += `; ${p}`;
    else out.push({ path: '', message: p });
  }
  return out;
}

/** lineOf is the 1-based line of offset in text. */
export function lineOf(text, offset) {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** offsetOf is the offset of a 1-based line and column. */
export function offsetOf(text, line, column) {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  return Math.min(text.length, off + Math.max(0, column - 1));
}

/**
 * locate finds path in text. It answers {start, end, line, exact}: the
 * range of the member ("key": value) or array element, or, when the path
 * does not exist in the text (a missing field), the deepest enclosing value
 * that does, with exact false. null when text is not JSON enough to tell.
 */
export function locate(text, path) {
  const segs = parsePath(path);
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const skipString = () => {
    i++;
    while (i < n) {
      const c = text[i];
      if (c === '\\') i += 2;
      else if (c === '"') {
        i++;
        return;
      } else i++;
    }
    throw new Error('unterminated string');
  };
  const skipValue = () => {
    ws();
    const c = text[i];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      let depth = 0;
      while (i < n) {
        const d = text[i];
        if (d === '"') {
          skipString();
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') {
          depth--;
          if (depth === 0) {
            i++;
            return;
          }
        }
        i++;
      }
      throw new Error('unterminated value');
    }
    while (i < n && !',}] \t\r\n'.includes(text[i])) i++;
  };
  try {
    ws();
    let start = i;
    let container = i;
    let matched = 0;
    for (const seg of segs) {
      ws();
      container = i;
      let found = false;
      if (typeof seg === 'number') {
        if (text[i] !== '[') break;
        i++;
        ws();
        if (text[i] === ']') break;
        for (let idx = 0; ; idx++) {
          ws();
          if (idx === seg) {
            found = true;
            start = i;
            break;
          }
          skipValue();
          ws();
          if (text[i] !== ',') break;
          i++;
        }
      } else {
        if (text[i] !== '{') break;
        i++;
        for (;;) {
          ws();
          if (text[i] !== '"') break;
          const keyStart = i;
          skipString();
          const key = JSON.parse(text.slice(keyStart, i));
          ws();
          if (text[i] !== ':') break;
          i++;
          ws();
          if (key === seg) {
            found = true;
            start = keyStart;
            break;
          }
          skipValue();
          ws();
          if (text[i] !== ',') break;
          i++;
        }
      }
      if (!found) break;
      matched++;
    }
    if (matched === segs.length) {
      ws();
      skipValue();
      return { start, end: i, line: lineOf(text, start), exact: true };
    }
    return { start: container, end: Math.min(n, container + 1), line: lineOf(text, container), exact: false };
  } catch {
    return null;
  }
}
