//! 802.1Q VLAN tag rewrite per port (VPP's "vtr"): applied to frames as
//! they enter the bridge from the port, and inverted as they leave by it.
//!
//! Each rewrite names what the frame looks like on the wire and what it
//! looks like inside the bridge; a frame that does not look as expected on
//! its side is refused (dropped with a counter), in both directions, so
//! that `egress(ingress(frame)) == frame` for every frame accepted.

use sluice_buf::Packet;
use sluice_wire::EtherType;

/// How a port's frames are tagged on the wire versus in the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VlanRewrite {
    /// Frames pass unchanged, tagged or not.
    #[default]
    None,
    /// Tagged `vid` (TPID 0x8100) on the wire, untagged in the bridge: the
    /// tag is popped on the way in and pushed on the way out.
    Pop1 {
        /// The VLAN id on the wire.
        vid: u16,
    },
    /// Untagged on the wire, tagged `vid` in the bridge: a tag is pushed on
    /// the way in and popped on the way out.
    Push1 {
        /// The VLAN id in the bridge.
        vid: u16,
    },
    /// Tagged `wire` on the wire, tagged `bridge` in the bridge: the VLAN id
    /// is rewritten each way (priority and DEI bits kept).
    Translate1To1 {
        /// The VLAN id on the wire.
        wire: u16,
        /// The VLAN id in the bridge.
        bridge: u16,
    },
}

/// Why a rewrite refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VtrError {
    /// The frame is not tagged as the port expects.
    Mismatch,
    /// No headroom left for a tag.
    NoRoom,
}

const TPID: [u8; 2] = EtherType::VLAN.0.to_be_bytes();
/// Destination and source MACs: what moves when a tag comes or goes.
const MACS: usize = 12;
const TAGGED_LEN: usize = 18;

impl VlanRewrite {
    /// The VLAN ids of the rewrite, to check that they are in 1..=4094.
    pub fn vids(&self) -> impl Iterator<Item = u16> {
        let (a, b) = match *self {
            VlanRewrite::None => (None, None),
            VlanRewrite::Pop1 { vid } | VlanRewrite::Push1 { vid } => (Some(vid), None),
            VlanRewrite::Translate1To1 { wire, bridge } => (Some(wire), Some(bridge)),
        };
        a.into_iter().chain(b)
    }

    /// Rewrites a frame that came in from the wire into its bridge form.
    #[inline]
    pub(crate) fn ingress(&self, pkt: &mut Packet) -> Result<(), VtrError> {
        match *self {
            VlanRewrite::None => Ok(()),
            VlanRewrite::Pop1 { vid } => pop(pkt, vid),
            VlanRewrite::Push1 { vid } => push(pkt, vid),
            VlanRewrite::Translate1To1 { wire, bridge } => translate(pkt, wire, bridge),
        }
    }

    /// Rewrites a frame leaving the bridge into its wire form.
    #[inline]
    pub(crate) fn egress(&self, pkt: &mut Packet) -> Result<(), VtrError> {
        match *self {
            VlanRewrite::None => Ok(()),
            VlanRewrite::Pop1 { vid } => push(pkt, vid),
            VlanRewrite::Push1 { vid } => pop(pkt, vid),
            VlanRewrite::Translate1To1 { wire, bridge } => translate(pkt, bridge, wire),
        }
    }
}

/// The outer VLAN id of an 802.1Q-tagged frame.
#[inline]
fn outer_vid(d: &[u8]) -> Option<u16> {
    let h = d.get(..TAGGED_LEN)?;
    (h[12..14] == TPID).then(|| u16::from_be_bytes([h[14], h[15]]) & 0x0fff)
}

fn pop(pkt: &mut Packet, vid: u16) -> Result<(), VtrError> {
    let d = pkt.data_mut();
    if outer_vid(d) != Some(vid) {
        return Err(VtrError::Mismatch);
    }
    d.copy_within(..MACS, 4);
    pkt.advance(4).map_err(|_| VtrError::Mismatch)
}

fn push(pkt: &mut Packet, vid: u16) -> Result<(), VtrError> {
    let d = pkt.data();
    match d.get(12..14) {
        Some(t) if !EtherType(u16::from_be_bytes([t[0], t[1]])).is_vlan() => {}
        _ => return Err(VtrError::Mismatch),
    }
    let d = match pkt.prepend(4) {
        Ok(_) => pkt.data_mut(),
        Err(_) => return Err(VtrError::NoRoom),
    };
    d.copy_within(4..4 + MACS, 0);
    d[12..14].copy_from_slice(&TPID);
    d[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    Ok(())
}

fn translate(pkt: &mut Packet, from: u16, to: u16) -> Result<(), VtrError> {
    let d = pkt.data_mut();
    if outer_vid(d) != Some(from) {
        return Err(VtrError::Mismatch);
    }
    d[14] = (d[14] & 0xf0) | (to >> 8) as u8 & 0x0f;
    d[15] = to as u8;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_buf::{HugePages, Pool, PoolConfig};

    fn pool() -> Pool {
        Pool::new(&PoolConfig {
            buffers: 64,
            huge_pages: HugePages::Never,
            lock: false,
        })
        .unwrap()
    }

    fn untagged() -> Vec<u8> {
        let mut f = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00];
        f.extend(0..46u8);
        f
    }

    fn tagged(tci: u16) -> Vec<u8> {
        let mut f = untagged();
        let t = tci.to_be_bytes();
        f.splice(12..12, [0x81, 0x00, t[0], t[1]]);
        f
    }

    fn run(
        f: impl Fn(&VlanRewrite, &mut Packet) -> Result<(), VtrError>,
        vtr: VlanRewrite,
        bytes: &[u8],
    ) -> Result<Vec<u8>, VtrError> {
        let pool = pool();
        let mut cache = pool.cache(8);
        let mut p = cache.alloc_from(bytes).unwrap();
        let r = f(&vtr, &mut p);
        let mut out = Vec::new();
        p.copy_to(&mut out);
        cache.free(p);
        r.map(|()| out)
    }

    #[test]
    fn each_rewrite_both_ways_byte_exact() {
        let cases = [
            (VlanRewrite::Pop1 { vid: 100 }, tagged(100), untagged()),
            (VlanRewrite::Push1 { vid: 200 }, untagged(), tagged(200)),
            (
                VlanRewrite::Translate1To1 {
                    wire: 100,
                    bridge: 300,
                },
                tagged(0xb000 | 100),
                tagged(0xb000 | 300),
            ),
            (VlanRewrite::None, tagged(5), tagged(5)),
        ];
        for (vtr, wire, bridge) in cases {
            assert_eq!(run(VlanRewrite::ingress, vtr, &wire), Ok(bridge.clone()));
            assert_eq!(run(VlanRewrite::egress, vtr, &bridge), Ok(wire));
        }
    }

    #[test]
    fn mismatched_tagging_is_refused() {
        let m = Err(VtrError::Mismatch);
        let pop = VlanRewrite::Pop1 { vid: 100 };
        assert_eq!(run(VlanRewrite::ingress, pop, &untagged()), m);
        assert_eq!(run(VlanRewrite::ingress, pop, &tagged(101)), m);
        assert_eq!(run(VlanRewrite::egress, pop, &tagged(100)), m);
        let push = VlanRewrite::Push1 { vid: 100 };
        assert_eq!(run(VlanRewrite::ingress, push, &tagged(100)), m);
        assert_eq!(run(VlanRewrite::egress, push, &untagged()), m);
        let tr = VlanRewrite::Translate1To1 { wire: 1, bridge: 2 };
        assert_eq!(run(VlanRewrite::ingress, tr, &tagged(2)), m);
        assert_eq!(run(VlanRewrite::egress, tr, &tagged(1)), m);
        // QinQ's 0x88a8 is not an 802.1Q tag; short frames have no tag.
        let mut s_tag = tagged(100);
        s_tag[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(run(VlanRewrite::ingress, pop, &s_tag), m);
        assert_eq!(run(VlanRewrite::ingress, pop, &tagged(100)[..17]), m);
        assert_eq!(run(VlanRewrite::ingress, push, &untagged()[..13]), m);
        assert_eq!(run(VlanRewrite::ingress, push, &s_tag), m);
    }

    #[test]
    fn push_without_headroom_is_refused() {
        let pool = pool();
        let mut cache = pool.cache(8);
        let mut p = cache.alloc_from(&untagged()).unwrap();
        let room = p.headroom();
        p.prepend(room).unwrap();
        p.advance(0).unwrap();
        // The frame now starts at the very front of the buffer.
        let len = p.len();
        p.data_mut()[..14].copy_from_slice(&untagged()[..14]);
        assert_eq!(
            VlanRewrite::Push1 { vid: 1 }.ingress(&mut p),
            Err(VtrError::NoRoom)
        );
        assert_eq!(p.len(), len);
        cache.free(p);
    }
}
