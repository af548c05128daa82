/**
 * Naming rules: Kubernetes DNS-1123 names and label syntax, and Calico's stricter rules for
 * policies and tiers (libcalico-go validator v3: nameRegex, tierNameRegex,
 * networkPolicyNameRegex, globalNetworkPolicyNameRegex).
 */

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = `${LABEL}(\\.${LABEL})*`;

const DNS_LABEL_RE = new RegExp(`^${LABEL}$`);
const DNS_SUBDOMAIN_RE = new RegExp(`^${SUBDOMAIN}$`);
// Calico accepts `label` or `label.label` for policies, plus the legacy Kubernetes-derived forms.
const NETWORK_POLICY_NAME_RE = new RegExp(`^(${LABEL}(\\.${LABEL})?|(knp|ossg)\\.default\\.${SUBDOMAIN})$`);
const GLOBAL_NETWORK_POLICY_NAME_RE = new RegExp(`^(${LABEL}\\.)?${LABEL}$`);
// Kubernetes qualified name part (label key name, label value).
const QUALIFIED_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Returns why `name` is not a DNS-1123 subdomain (≤253 chars), or undefined when it is. */
export function subdomainProblem(name: string): string | undefined {
  if (name.length > 253) return 'must be at most 253 characters';
  if (!DNS_SUBDOMAIN_RE.test(name)) {
    return 'must be a DNS-1123 subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit';
  }
  return undefined;
}

/** Returns why `name` is not a DNS-1123 label (≤63 chars, no dots), or undefined when it is. */
export function labelNameProblem(name: string): string | undefined {
  if (name.length > 63) return 'must be at most 63 characters';
  if (!DNS_LABEL_RE.test(name)) {
    return 'must be a DNS-1123 label: lower-case letters, digits and "-", starting and ending with a letter or digit (no dots)';
  }
  return undefined;
}

export function tierNameProblem(name: string): string | undefined {
  // Tier names become prefixes of policy names ("<tier>.<policy>"), so they may not hold dots.
  return labelNameProblem(name);
}

export function networkPolicyNameProblem(name: string): string | undefined {
  if (name.length > 253) return 'must be at most 253 characters';
  if (!NETWORK_POLICY_NAME_RE.test(name)) {
    return 'policy names must be a DNS-1123 label, optionally prefixed by "<tier>." (e.g. "allow-dns" or "security.allow-dns")';
  }
  return undefined;
}

export function globalNetworkPolicyNameProblem(name: string): string | undefined {
  if (name.length > 253) return 'must be at most 253 characters';
  if (!GLOBAL_NETWORK_POLICY_NAME_RE.test(name)) {
    return 'policy names must be a DNS-1123 label, optionally prefixed by "<tier>." (e.g. "allow-dns" or "security.allow-dns")';
  }
  return undefined;
}

/**
 * Names that only need to be one segment of a storage key (IPAM handles carry container IDs and
 * similar opaque identifiers).
 */
export function keySegmentProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > 253) return 'must be at most 253 characters';
  if (/[/\s]/.test(name)) return 'must not contain "/" or whitespace';
  return undefined;
}

/** Kubernetes label/annotation key: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || subdomainProblem(prefix) !== undefined)) {
    return 'key prefix (before "/") must be a DNS-1123 subdomain';
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME_RE.test(name)) {
    return 'key name must be 1–63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  }
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !QUALIFIED_NAME_RE.test(value)) {
    return 'label values must be empty or 1–63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  }
  return undefined;
}
