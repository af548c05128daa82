/** Protocol numbers from RFC 4271 §4 and the IANA BGP registries. */

export const BGP_PORT = 179;
export const HEADER_LENGTH = 19;
export const MAX_MESSAGE_LENGTH = 4096;
/** RFC 8654: the extended message capability raises the limit for all but OPEN and KEEPALIVE. */
export const MAX_EXTENDED_MESSAGE_LENGTH = 65535;
/** RFC 6793 §9: the 2-octet placeholder for a 4-octet AS number. */
export const AS_TRANS = 23456;

export const MessageType = {
  Open: 1,
  Update: 2,
  Notification: 3,
  Keepalive: 4,
  RouteRefresh: 5,
} as const;

export const Afi = { Ipv4: 1, Ipv6: 2 } as const;
export type Afi = (typeof Afi)[keyof typeof Afi];
export const Safi = { Unicast: 1 } as const;

export const AttrFlag = {
  Optional: 0x80,
  Transitive: 0x40,
  Partial: 0x20,
  ExtendedLength: 0x10,
} as const;

export const AttrType = {
  Origin: 1,
  AsPath: 2,
  NextHop: 3,
  Med: 4,
  LocalPref: 5,
  AtomicAggregate: 6,
  Aggregator: 7,
  Communities: 8,
  OriginatorId: 9,
  ClusterList: 10,
  MpReachNlri: 14,
  MpUnreachNlri: 15,
  As4Path: 17,
  As4Aggregator: 18,
  LargeCommunity: 32,
} as const;

export const CapabilityCode = {
  Multiprotocol: 1,
  RouteRefresh: 2,
  ExtendedNextHop: 5,
  ExtendedMessage: 6,
  GracefulRestart: 64,
  FourOctetAs: 65,
  AddPath: 69,
  EnhancedRouteRefresh: 70,
} as const;

/** RFC 4271 §4.5 error codes. */
export const ErrorCode = {
  MessageHeader: 1,
  Open: 2,
  Update: 3,
  HoldTimerExpired: 4,
  Fsm: 5,
  Cease: 6,
  /** RFC 7313 §5 */
  RouteRefresh: 7,
} as const;

export const HeaderSubcode = { NotSynchronized: 1, BadLength: 2, BadType: 3 } as const;

export const OpenSubcode = {
  UnsupportedVersion: 1,
  BadPeerAs: 2,
  BadBgpId: 3,
  UnsupportedOptionalParameter: 4,
  UnacceptableHoldTime: 6,
  /** RFC 5492 §5 */
  UnsupportedCapability: 7,
} as const;

export const UpdateSubcode = {
  MalformedAttributeList: 1,
  UnrecognizedWellKnown: 2,
  MissingWellKnown: 3,
  AttributeFlags: 4,
  AttributeLength: 5,
  InvalidOrigin: 6,
  InvalidNextHop: 8,
  OptionalAttribute: 9,
  InvalidNetworkField: 10,
  MalformedAsPath: 11,
} as const;

/** RFC 4486 Cease subcodes. */
export const CeaseSubcode = {
  MaxPrefixes: 1,
  AdminShutdown: 2,
  PeerDeconfigured: 3,
  AdminReset: 4,
  ConnectionRejected: 5,
  OtherConfigChange: 6,
  ConnectionCollision: 7,
  OutOfResources: 8,
  /** RFC 8538 */
  HardReset: 9,
} as const;

export const Origin = { Igp: 0, Egp: 1, Incomplete: 2 } as const;
export type Origin = (typeof Origin)[keyof typeof Origin];

export const AsPathSegmentType = {
  Set: 1,
  Sequence: 2,
  ConfedSequence: 3,
  ConfedSet: 4,
} as const;
export type AsPathSegmentType = (typeof AsPathSegmentType)[keyof typeof AsPathSegmentType];

/** A family as a compact key: "1/1" is IPv4 unicast, "2/1" IPv6 unicast. */
export type FamilyKey = `${number}/${number}`;
export function familyKey(afi: number, safi: number): FamilyKey {
  return `${afi}/${safi}`;
}
export const IPV4_UNICAST: FamilyKey = '1/1';
export const IPV6_UNICAST: FamilyKey = '2/1';
