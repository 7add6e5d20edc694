/**
 * XML for WebDAV (RFC 4918 §14, §16 "XML extensibility"): request bodies parsed into a
 * small namespace-resolved element tree, and responses written with escaping.
 *
 * Parsing uses saxes (strict, namespace-aware, well-formedness errors as errors). Hostile
 * input is refused before it costs anything: a DOCTYPE (no DTD, so no entity expansion —
 * WebDAV bodies never need one, RFC 4918 §20.6), nesting deeper than `maxDepth`, more
 * than `maxElements` elements, attribute values or names over `maxAttrBytes`. Errors are
 * XmlError values with a message for the 400 body.
 */
import { SaxesParser } from 'saxes';

export const DAV = 'DAV:';
export const CALDAV = 'urn:ietf:params:xml:ns:caldav';
export const CARDDAV = 'urn:ietf:params:xml:ns:carddav';
export const CS = 'http://calendarserver.org/ns/';
export const APPLE = 'http://apple.com/ns/ical/';

export interface XmlElement {
  ns: string;
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

export class XmlError extends Error {
  override name = 'XmlError';
}

export interface XmlLimits {
  maxDepth: number;
  maxElements: number;
  maxAttrBytes: number;
  maxTextBytes: number;
}

export const XML_LIMITS: XmlLimits = { maxDepth: 48, maxElements: 50_000, maxAttrBytes: 4096, maxTextBytes: 8 * 1024 * 1024 };

/** `{ns}name`: the key properties are known by. */
export const clark = (ns: string, name: string) => `{${ns}}${name}`;
export const keyOf = (e: XmlElement) => clark(e.ns, e.name);

export function parseXml(text: string, limits: XmlLimits = XML_LIMITS): XmlElement {
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) throw new XmlError('a DOCTYPE or ENTITY declaration is not allowed in a WebDAV request body');
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let count = 0;
  let textBytes = 0;
  parser.on('opentag', (tag) => {
    if (stack.length >= limits.maxDepth) throw new XmlError(`elements nest deeper than ${limits.maxDepth} levels`);
    if (++count > limits.maxElements) throw new XmlError(`more than ${limits.maxElements} elements`);
    const attrs: Record<string, string> = {};
    for (const a of Object.values(tag.attributes)) {
      const attr = a as { uri: string; local: string; value: string; prefix: string };
      if (attr.value.length > limits.maxAttrBytes || attr.local.length > limits.maxAttrBytes) throw new XmlError(`an attribute is longer than ${limits.maxAttrBytes} bytes`);
      if (attr.prefix === 'xmlns' || (attr.prefix === '' && attr.local === 'xmlns')) continue;
      attrs[attr.uri ? clark(attr.uri, attr.local) : attr.local] = attr.value;
    }
    const el: XmlElement = { ns: tag.uri ?? '', name: tag.local ?? tag.name, attrs, children: [], text: '' };
    if (stack.length > 0) stack[stack.length - 1]!.children.push(el);
    else if (root) throw new XmlError('more than one root element');
    else root = el;
    stack.push(el);
  });
  parser.on('closetag', () => void stack.pop());
  const onText = (t: string) => {
    if (stack.length === 0) return;
    textBytes += t.length;
    if (textBytes > limits.maxTextBytes) throw new XmlError(`more than ${limits.maxTextBytes} bytes of text`);
    stack[stack.length - 1]!.text += t;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('doctype', () => {
    throw new XmlError('a DOCTYPE is not allowed in a WebDAV request body');
  });
  parser.on('error', (err) => {
    throw err instanceof XmlError ? err : new XmlError(`not well-formed XML: ${err.message.split('\n')[0]}`);
  });
  try {
    parser.write(text).close();
  } catch (err) {
    if (err instanceof XmlError) throw err;
    throw new XmlError(`not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!root) throw new XmlError('the body has no XML element');
  return root;
}

export const child = (e: XmlElement | undefined, ns: string, name: string) => e?.children.find((c) => c.ns === ns && c.name === name);
export const children = (e: XmlElement | undefined, ns: string, name: string) => e?.children.filter((c) => c.ns === ns && c.name === name) ?? [];

// ---- writing ----

export function escapeXml(s: string): string {
  // Characters XML 1.0 cannot carry at all are dropped (they cannot be escaped).
  return s.replace(/[&<>"\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : ''));
}

/** The text escapeXml wrote (and the five entities and character references XML defines). */
export function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (_, e: string) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'amp') return '&';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    const code = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : '';
  });
}

/** Prefixes used in responses; any other namespace gets an xmlns on its element. */
const PREFIX: Record<string, string> = { [DAV]: 'D', [CALDAV]: 'C', [CARDDAV]: 'CR', [CS]: 'CS', [APPLE]: 'A' };
export const ROOT_XMLNS = Object.entries(PREFIX).map(([ns, p]) => ` xmlns:${p}="${ns}"`).join('');

/** An element name for output, with an inline xmlns for namespaces without a prefix. */
export function tagOf(ns: string, name: string): { open: string; close: string } {
  const p = PREFIX[ns];
  if (p) return { open: `${p}:${name}`, close: `${p}:${name}` };
  if (ns === '') return { open: name, close: name };
  return { open: `X:${name} xmlns:X="${escapeXml(ns)}"`, close: `X:${name}` };
}

export function el(ns: string, name: string, inner?: string): string {
  const t = tagOf(ns, name);
  return inner === undefined || inner === '' ? `<${t.open}/>` : `<${t.open}>${inner}</${t.close}>`;
}

/** Write a parsed element back out (dead properties keep their XML). */
export function serialize(e: XmlElement): string {
  const t = tagOf(e.ns, e.name);
  const attrs = Object.entries(e.attrs).filter(([k]) => !k.startsWith('{')).map(([k, v]) => ` ${k}="${escapeXml(v)}"`).join('');
  const inner = e.children.length > 0 ? e.children.map(serialize).join('') : escapeXml(e.text);
  return inner === '' ? `<${t.open}${attrs}/>` : `<${t.open}${attrs}>${inner}</${t.close}>`;
}

export function document(rootNs: string, rootName: string, inner: string): string {
  const t = tagOf(rootNs, rootName);
  return `<?xml version="1.0" encoding="utf-8"?>\n<${t.open}${ROOT_XMLNS}>${inner}</${t.close}>\n`;
}
