/**
 * The views services publish of their validated config for other services' cross-service
 * rules (ConfigSpec.view / crossCheck). Services never import each other, so the shape of
 * each view is a platform contract, named here; a service's view implements its type.
 */

/** One record found in a served zone. */
export interface DnsRecordView {
  /** Presentation-form RDATA, e.g. '10 mail.example.net.' for MX, '"v=spf1 -all"' for TXT. */
  data: string;
  /** Config file that holds it (dns/zones/ORIGIN.zone or dns/local.yaml). */
  file: string;
  line?: number;
}

/** services/dns: the zones the appliance serves. */
export interface DnsView {
  /** Origins (lowercase, no trailing dot) with their files. */
  zones: { origin: string; file: string }[];
  /** The served zone holding `name` (longest match), or undefined. */
  zoneOf(name: string): { origin: string; file: string } | undefined;
  /** Records of name/type (case-insensitive, with or without the trailing dot); [] when none. 'self' already resolved. */
  lookup(name: string, type: string): DnsRecordView[];
}
