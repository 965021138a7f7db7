//! The ledger's Merkle tree (RFC 6962/9162), kept as tiles in the store beside the blocks.
//!
//! Leaf `i` is the entry of seq `i + 1`; its leaf input is the entry's 32-byte chained hash
//! ([`custos_tlog`]'s crate doc). The tree is stored as C2SP `tlog-tiles` of height 8: the
//! tile `(level L, index N)` holds, in order, the hashes of the nodes of tree level `8·L`
//! numbered `256·N` to `256·N + 255` — level-0 tiles hold leaf hashes, a level-1 tile the
//! roots of 256 full level-0 tiles, and so on. A tile at the right edge is partial (fewer
//! than 256 hashes) and grows in place; a tile's hashes never change once written, so a tile
//! read later serves every smaller tree too. Any complete subtree's hash comes from one
//! tile (at most 128 of its hashes, hashed up), so a proof reads O(log n) tiles — three for
//! ten million entries.
//!
//! Level-0 tiles are never stored: the leaf hash of an entry is `SHA-256(0x00 || its
//! hash)`, and the entry hashes are in the ledger blocks already, so a level-0 tile is read
//! from the ≤ 256 entries it covers (one or two blocks: [`hashes_in`]). Only the tiles of
//! level 1 and up are stored — one 32-byte hash per 256 entries — and the stored tree
//! covers the entries the level-1 tiles reach ([`covered_by`]); the up to 255 entries after
//! them are the blocks' too ([`served_size`], [`catch_up`]). So an append writes tiles
//! only when it completes 256 entries (the partial level-1 tile, and a tile above it that
//! changed or filled), not at every group commit, and about 1/256 of the bytes of the
//! entries' hashes. The ledger writer keeps the right edge (the partial tile of each level,
//! [`Edge`]) in memory, and writes the tiles it changed in the same transaction as the
//! block. Pure but for [`hashes_in`], which reads through the `Store`.

use std::collections::HashMap;

use custos_tlog::{Hash, Subtree};

use crate::error::{Error, Result};

/// Tree levels per tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// A tile's place: its tile level and its index within the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileKey {
    /// Tile level: its hashes are of tree level `8 · level`.
    pub level: u8,
    /// Its index among the tiles of its level.
    pub index: u64,
}

/// Tiles read from the store, by key; each a tile's hashes, 32 bytes each, concatenated.
pub type Tiles = HashMap<TileKey, Vec<u8>>;

/// The leaf hash of the entry whose chained hash (hex, as stored) is `hash`. Stored text that
/// is not 64 hex digits (a tampered row) is hashed as it is: the leaf then matches nothing
/// a verifier recomputes.
pub fn leaf_of_hex(hash: &[u8]) -> Hash {
    match unhex32(hash) {
        Some(raw) => custos_tlog::leaf_hash(&raw),
        None => custos_tlog::leaf_hash(hash),
    }
}

/// 64 hex digits as 32 bytes.
pub fn unhex32(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// The tree's right edge: for each tile level, the hashes of its partial tile (empty when
/// the level's last tile is full).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edge {
    size: u64,
    partial: Vec<Vec<Hash>>,
}

/// How many nodes of tile level `level` a tree of `size` leaves has complete.
fn complete_at(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0)
}

/// The hashes of a stored tile.
fn hashes_of(bytes: &[u8]) -> impl Iterator<Item = Hash> + '_ {
    bytes.chunks_exact(32).map(|c| {
        let mut h = [0u8; 32];
        h.copy_from_slice(c);
        h
    })
}

/// The root of `hashes` (a power of two of them) hashed up as one subtree.
fn subtree_root(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level_up(&level);
    }
    level
        .first()
        .copied()
        .unwrap_or_else(custos_tlog::empty_root)
}

impl Edge {
    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The stored partial tiles the edge of a tree of `size` leaves is made of (level 1
    /// and up: the level-0 partial tile is never stored).
    pub fn keys(size: u64) -> Vec<TileKey> {
        (1u8..8)
            .map(|level| (level, complete_at(size, level)))
            .take_while(|&(_, n)| n > 0)
            .filter(|&(_, n)| n % TILE_WIDTH != 0)
            .map(|(level, n)| TileKey {
                level,
                index: n / TILE_WIDTH,
            })
            .collect()
    }

    /// The edge of the tree of `size` leaves (a multiple of 256: what the stored tiles
    /// cover), from its stored partial tiles ([`Edge::keys`]) as read: a tile may hold more
    /// hashes than the edge needs (it was read after the tree grew), never fewer.
    pub fn load(size: u64, tiles: &Tiles) -> Result<Self> {
        let mut partial = Vec::new();
        if size % TILE_WIDTH != 0 {
            return Err(Error::Storage(format!(
                "the ledger's Merkle tree is loaded at {size} leaves, not a whole tile"
            )));
        }
        for level in 0u8..8 {
            let n = complete_at(size, level);
            if n == 0 {
                break;
            }
            let width = usize::try_from(n % TILE_WIDTH).unwrap_or(0);
            let key = TileKey {
                level,
                index: n / TILE_WIDTH,
            };
            let mut hashes = Vec::with_capacity(TILE_WIDTH as usize);
            if width > 0 {
                let tile = tiles.get(&key).ok_or_else(|| missing(key))?;
                hashes.extend(hashes_of(tile).take(width));
                if hashes.len() < width {
                    return Err(missing(key));
                }
            }
            partial.push(hashes);
        }
        Ok(Self { size, partial })
    }

    /// Appends leaves (their leaf hashes) and returns the tiles that changed, each with its
    /// whole content, to be written in the same transaction as the entries.
    pub fn append(&mut self, leaves: impl IntoIterator<Item = Hash>) -> Vec<(TileKey, Vec<u8>)> {
        let mut full: Vec<(TileKey, Vec<u8>)> = Vec::new();
        let mut dirty = [false; 8];
        for leaf in leaves {
            let mut carry = leaf;
            let mut level = 0usize;
            loop {
                if self.partial.len() <= level {
                    self.partial.push(Vec::with_capacity(TILE_WIDTH as usize));
                }
                let Some(tile) = self.partial.get_mut(level) else {
                    break;
                };
                tile.push(carry);
                if let Some(d) = dirty.get_mut(level) {
                    *d = true;
                }
                if tile.len() < TILE_WIDTH as usize {
                    break;
                }
                // A tile is full: write it (a level-0 tile is the blocks': never), and its
                // root becomes a hash of the level above.
                let index = complete_at(self.size + 1, level as u8) / TILE_WIDTH - 1;
                carry = subtree_root(tile);
                if level > 0 {
                    full.push((
                        TileKey {
                            level: level as u8,
                            index,
                        },
                        tile.concat(),
                    ));
                }
                tile.clear();
                level += 1;
            }
            self.size += 1;
        }
        // The level-0 partial tile is the blocks' (module doc).
        for (level, tile) in self.partial.iter().enumerate().skip(1) {
            if dirty.get(level).copied().unwrap_or(false) && !tile.is_empty() {
                full.push((
                    TileKey {
                        level: level as u8,
                        index: complete_at(self.size, level as u8) / TILE_WIDTH,
                    },
                    tile.concat(),
                ));
            }
        }
        full
    }
}

/// Leaves the stored tiles cover, from the last level-1 tile (`index`, `bytes` long): 256
/// per level-1 hash.
pub fn covered_by(index: u64, bytes: u64) -> u64 {
    (index * TILE_WIDTH + bytes / 32) * TILE_WIDTH
}

/// The tree size the store serves: the ledger's `head` entries, as far as the stored tiles
/// (`covered`, a multiple of 256) and the blocks' last partial tile reach.
pub fn served_size(head: u64, covered: u64) -> u64 {
    head.min(covered + TILE_WIDTH - 1)
}

/// What the tree's upkeep needs from a store, inside the ledger's append transaction.
pub(crate) trait TileIo {
    /// Leaves the stored tiles cover: 256 per level-1 hash ([`covered_by`]).
    fn tree_size(&mut self) -> Result<u64>;
    /// The stored tiles of `keys` (those there).
    fn read_tiles(&mut self, keys: &[TileKey]) -> Result<Tiles>;
    /// Inserts or replaces tiles.
    fn write_tiles(&mut self, tiles: &[(TileKey, Vec<u8>)]) -> Result<()>;
    /// Hands `each` the ledger blocks holding the seqs `from..to`, in order (see
    /// `blocks_from` in the stores).
    fn blocks(
        &mut self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(&crate::ledger::block::BlockRef<'_>) -> Result<bool>,
    ) -> Result<()>;
}

/// Leaves the tree gains per step when it is built for entries it lacks.
const CATCH_UP_STEP: u64 = 65_536;

/// The leaf hashes of the stored entries `from..to`, from their stored hashes.
fn stored_leaves(io: &mut impl TileIo, from: u64, to: u64) -> Result<Vec<Hash>> {
    let mut scan = crate::ledger::block::Scan::new(from..to);
    let mut leaves: Vec<Hash> = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
    io.blocks(from, to, &mut |b| {
        Ok(scan.block(b, &mut |r| {
            let ok = r.seq == from + leaves.len() as u64 && !r.hash.is_empty();
            if ok {
                leaves.push(leaf_of_hex(r.hash));
            }
            ok
        }))
    })?;
    if (leaves.len() as u64) < to - from {
        return Err(Error::Storage(format!(
            "the ledger's entry {} cannot be read to build its Merkle tree; run `custos audit \
             verify`",
            from + leaves.len() as u64
        )));
    }
    Ok(leaves)
}

/// The tree's edge: as the tiles store it, grown by the leaves of the entries after them
/// (the level-0 partial tile, and at most `limit` more entries the ledger holds and the tree
/// lacks: a ledger kept before the tree), writing the tiles that changed. Fails when the
/// tiles cover more leaves than the ledger has entries: the ledger's tail was removed, and
/// nothing is appended onto a cut ledger.
pub(crate) fn catch_up(io: &mut impl TileIo, head_seq: u64, limit: u64) -> Result<Edge> {
    let size = io.tree_size()?;
    if size > head_seq {
        return Err(Error::Storage(format!(
            "the ledger's Merkle tree holds {size} entries but the ledger {head_seq}: entries \
             were removed; run `custos audit verify`"
        )));
    }
    let mut edge = Edge::load(size, &io.read_tiles(&Edge::keys(size))?)?;
    let end = head_seq.min(size.saturating_add(limit.max(TILE_WIDTH)));
    while edge.size() < end {
        let to = end.min(edge.size() + CATCH_UP_STEP);
        let leaves = stored_leaves(io, edge.size() + 1, to + 1)?;
        let writes = edge.append(leaves);
        io.write_tiles(&writes)?;
    }
    Ok(edge)
}

/// Appends the leaves of the entries just chained after the ledger's `head_seq`, in the
/// append's transaction: from the edge kept in memory when it is the tree of `head_seq`
/// leaves, else from the stored tiles (another process appended, or the last commit
/// failed). `cache` holds the new edge afterwards; the caller empties it when the
/// transaction does not commit.
pub(crate) fn append(
    io: &mut impl TileIo,
    cache: &mut Option<Edge>,
    head_seq: u64,
    leaves: impl IntoIterator<Item = Hash>,
) -> Result<()> {
    let mut edge = match cache.take() {
        Some(e) if e.size() == head_seq => e,
        _ => catch_up(io, head_seq, u64::MAX)?,
    };
    let writes = edge.append(leaves);
    io.write_tiles(&writes)?;
    *cache = Some(edge);
    Ok(())
}

fn missing(key: TileKey) -> Error {
    Error::Storage(format!(
        "the ledger's Merkle tree lacks tile {}/{} (or holds too few hashes in it)",
        key.level, key.index
    ))
}

/// The tile that holds the hashes a complete subtree is made of.
pub fn tile_of(s: Subtree) -> TileKey {
    let level = s.level / TILE_HEIGHT;
    let up = s.level % TILE_HEIGHT;
    TileKey {
        level,
        index: (s.index << up) >> TILE_HEIGHT,
    }
}

/// A complete subtree's hash, from its tile.
pub fn node(tiles: &Tiles, s: Subtree) -> Result<Hash> {
    let key = tile_of(s);
    let up = s.level % TILE_HEIGHT;
    let first = usize::try_from((s.index << up) & (TILE_WIDTH - 1)).unwrap_or(usize::MAX);
    let n = 1usize << up;
    let tile = tiles.get(&key).ok_or_else(|| missing(key))?;
    let hashes: Vec<Hash> = hashes_of(tile).skip(first).take(n).collect();
    if hashes.len() < n {
        return Err(missing(key));
    }
    Ok(subtree_root(&hashes))
}

/// The tiles the hashes of `ranges` (leaf ranges of proofs, or `[0, size)`) come from.
pub fn tiles_for(ranges: &[(u64, u64)]) -> Vec<TileKey> {
    let mut keys: Vec<TileKey> = ranges
        .iter()
        .flat_map(|&(lo, hi)| custos_tlog::subtrees(lo, hi))
        .map(tile_of)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The Merkle tree hashes of `ranges`, read from the store's tiles of level 1 and up in one
/// read, and the level-0 tiles they need made from the blocks' entries (a level-0 row an old
/// store may still hold is not read).
pub fn hashes_in(store: &dyn crate::Store, ranges: &[(u64, u64)]) -> Result<Vec<Hash>> {
    let keys = tiles_for(ranges);
    let (leaf_keys, upper): (Vec<TileKey>, Vec<TileKey>) =
        keys.into_iter().partition(|k| k.level == 0);
    let mut tiles = if upper.is_empty() {
        Tiles::new()
    } else {
        store.ledger_tiles(&upper)?
    };
    for key in leaf_keys {
        tiles.insert(key, leaf_tile(store, key)?);
    }
    range_hashes(&tiles, ranges)
}

/// An inclusion proof from the stored tiles: the audit path of leaf `index` in the tree of
/// `size` leaves, the leaf's hash and the root. `index < size <=` the stored tree's size.
pub fn prove_inclusion(
    store: &dyn crate::Store,
    index: u64,
    size: u64,
) -> Result<(Vec<Hash>, Hash, Hash)> {
    let mut ranges =
        custos_tlog::inclusion_path(index, size).map_err(|e| Error::Storage(e.to_string()))?;
    ranges.push((index, index + 1));
    ranges.push((0, size));
    let mut hashes = hashes_in(store, &ranges)?;
    let root = hashes.pop().unwrap_or_default();
    let leaf = hashes.pop().unwrap_or_default();
    Ok((hashes, leaf, root))
}

/// A consistency proof from the stored tiles, from the tree of `from` leaves to the tree of
/// `to`, with both roots. `from <= to <=` the stored tree's size.
pub fn prove_consistency(
    store: &dyn crate::Store,
    from: u64,
    to: u64,
) -> Result<(Vec<Hash>, Hash, Hash)> {
    let mut ranges =
        custos_tlog::consistency_path(from, to).map_err(|e| Error::Storage(e.to_string()))?;
    ranges.push((0, from));
    ranges.push((0, to));
    let mut hashes = hashes_in(store, &ranges)?;
    let to_root = hashes.pop().unwrap_or_default();
    let from_root = hashes.pop().unwrap_or_default();
    Ok((hashes, from_root, to_root))
}

/// Complete level-0 tiles with every hash inside them (the 256 leaves and the 255 interior
/// nodes up to the tile's root), kept between proofs: a complete tile never changes, and
/// making one costs a block read and 511 SHA-256s. Bounded; when full, the oldest tile (the
/// lowest index) goes first — proofs are mostly of recent entries.
#[derive(Debug, Default)]
pub struct LeafTileCache {
    tiles: std::sync::Mutex<std::collections::BTreeMap<u64, std::sync::Arc<Vec<Vec<Hash>>>>>,
}

/// Complete level-0 tiles kept at most (16 KiB each: 8 MiB).
pub const LEAF_TILES_CACHED: usize = 512;

impl LeafTileCache {
    fn get(&self, index: u64) -> Option<std::sync::Arc<Vec<Vec<Hash>>>> {
        self.tiles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&index)
            .cloned()
    }

    fn put(&self, index: u64, levels: Vec<Vec<Hash>>) -> std::sync::Arc<Vec<Vec<Hash>>> {
        let levels = std::sync::Arc::new(levels);
        let mut tiles = self
            .tiles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while tiles.len() >= LEAF_TILES_CACHED {
            if tiles.pop_first().is_none() {
                break;
            }
        }
        tiles.insert(index, std::sync::Arc::clone(&levels));
        levels
    }
}

/// Every level of a complete level-0 tile: `[leaves (256), 128, …, 2, root (1)]`.
fn tile_levels(leaves: &[u8]) -> Vec<Vec<Hash>> {
    let mut levels: Vec<Vec<Hash>> = vec![hashes_of(leaves).collect()];
    while let Some(last) = levels.last().filter(|l| l.len() > 1) {
        let up = level_up(last);
        levels.push(up);
    }
    levels
}

/// The level above `level`: each pair's node hash (an odd last one carried up as is).
fn level_up(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|p| match p {
            [l, r] => custos_tlog::node_hash(l, r),
            [l] => *l,
            _ => [0; 32],
        })
        .collect()
}

/// [`hashes_in`], with the complete level-0 tiles it needs taken from (and added to) `cache`.
pub fn hashes_in_cached(
    store: &dyn crate::Store,
    ranges: &[(u64, u64)],
    cache: &LeafTileCache,
) -> Result<Vec<Hash>> {
    let keys = tiles_for(ranges);
    let (leaf_keys, upper): (Vec<TileKey>, Vec<TileKey>) =
        keys.into_iter().partition(|k| k.level == 0);
    let mut tiles = if upper.is_empty() {
        Tiles::new()
    } else {
        store.ledger_tiles(&upper)?
    };
    let mut complete: HashMap<u64, std::sync::Arc<Vec<Vec<Hash>>>> = HashMap::new();
    for key in leaf_keys {
        if let Some(levels) = cache.get(key.index) {
            complete.insert(key.index, levels);
            continue;
        }
        let bytes = leaf_tile(store, key)?;
        if bytes.len() == TILE_WIDTH as usize * 32 {
            complete.insert(key.index, cache.put(key.index, tile_levels(&bytes)));
        }
        tiles.insert(key, bytes);
    }
    let mut memo: HashMap<Subtree, Hash> = HashMap::new();
    ranges
        .iter()
        .map(|&(lo, hi)| {
            custos_tlog::range_hash(lo, hi, &mut |s| {
                if s.level < TILE_HEIGHT {
                    let leaves = s.index << s.level;
                    if let Some(levels) = complete.get(&(leaves >> TILE_HEIGHT)) {
                        let at = usize::try_from((leaves & (TILE_WIDTH - 1)) >> s.level)
                            .unwrap_or(usize::MAX);
                        if let Some(h) = levels.get(usize::from(s.level)).and_then(|l| l.get(at)) {
                            return Ok(*h);
                        }
                    }
                }
                node_memo(&tiles, &mut memo, s)
            })
        })
        .collect()
}

/// The leaf hashes of a level-0 tile, from the blocks' entries (fewer than 256 for the last,
/// partial one).
fn leaf_tile(store: &dyn crate::Store, key: TileKey) -> Result<Vec<u8>> {
    let first = key.index * TILE_WIDTH + 1;
    let mut bytes: Vec<u8> = Vec::with_capacity(TILE_WIDTH as usize * 32);
    let mut next = first;
    store.scan_ledger(first..first + TILE_WIDTH, &mut |r| {
        let ok = r.seq == next && !r.hash.is_empty();
        if ok {
            bytes.extend_from_slice(&leaf_of_hex(r.hash));
            next += 1;
        }
        ok
    })?;
    Ok(bytes)
}

/// The Merkle tree hashes of `ranges`, from `tiles` (read with [`tiles_for`]). Each
/// complete subtree's hash is computed once per call, from its halves' within a tile: the
/// audit paths of many leaves of one tile (a person's export proves each entry about them)
/// cost the tile's 255 interior hashes once, not once per path.
pub fn range_hashes(tiles: &Tiles, ranges: &[(u64, u64)]) -> Result<Vec<Hash>> {
    let mut memo: HashMap<Subtree, Hash> = HashMap::new();
    ranges
        .iter()
        .map(|&(lo, hi)| custos_tlog::range_hash(lo, hi, &mut |s| node_memo(tiles, &mut memo, s)))
        .collect()
}

/// [`node`], remembering each subtree's hash in `memo`.
fn node_memo(tiles: &Tiles, memo: &mut HashMap<Subtree, Hash>, s: Subtree) -> Result<Hash> {
    if let Some(h) = memo.get(&s) {
        return Ok(*h);
    }
    let h = if s.level % TILE_HEIGHT == 0 {
        // A hash the tile holds as is.
        node(tiles, s)?
    } else {
        let half = |index| Subtree {
            level: s.level - 1,
            index,
        };
        let left = node_memo(tiles, memo, half(s.index * 2))?;
        let right = node_memo(tiles, memo, half(s.index * 2 + 1))?;
        custos_tlog::node_hash(&left, &right)
    };
    memo.insert(s, h);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_tlog::{Compact, leaf_hash};

    fn leaf(i: u64) -> Hash {
        leaf_hash(&i.to_be_bytes())
    }

    /// Tiles grown by appends of uneven sizes serve the root, inclusion and consistency
    /// proofs of every smaller tree, and an edge reloaded from them appends as the one kept.
    #[test]
    fn tiles_serve_every_tree_they_have_grown_through() {
        let mut store: Tiles = HashMap::new();
        let mut edge = Edge::default();
        let mut compact = Compact::new();
        let mut roots = vec![compact.root()];
        let mut next = 0u64;
        for batch in [1u64, 2, 255, 1, 256, 3000, 7, 65_536, 65_000, 900] {
            let leaves: Vec<Hash> = (next..next + batch).map(leaf).collect();
            next += batch;
            for (k, v) in edge.append(leaves.iter().copied()) {
                let old = store.insert(k, v.clone());
                // Tiles only grow: what was there is a prefix of what replaces it.
                if let Some(old) = old {
                    assert!(v.starts_with(&old), "{k:?}");
                }
            }
            for l in leaves {
                compact.push(l);
                roots.push(compact.root());
            }
            assert_eq!(edge.size(), next);
            // Reloaded from the store and grown by the leaves past the stored tiles, the edge
            // is the same; no level-0 tile is stored partial.
            let covered = next / TILE_WIDTH * TILE_WIDTH;
            let keys = Edge::keys(covered);
            let read: Tiles = keys
                .iter()
                .filter_map(|k| store.get(k).map(|v| (*k, v.clone())))
                .collect();
            let mut again = Edge::load(covered, &read).unwrap();
            assert!(again.append((covered..next).map(leaf)).is_empty());
            assert_eq!(again, edge);
            // No level-0 tile is stored, and the level-1 tiles cover the whole tiles.
            assert!(store.keys().all(|k| k.level > 0));
            let last1 = store
                .iter()
                .filter(|(k, _)| k.level == 1)
                .max_by_key(|(k, _)| k.index)
                .map_or(0, |(k, v)| covered_by(k.index, v.len() as u64));
            assert_eq!(last1, covered);
        }
        // The level-0 tiles, as the blocks give them.
        for index in 0..=next / TILE_WIDTH {
            let tile: Vec<u8> = (index * TILE_WIDTH..next.min((index + 1) * TILE_WIDTH))
                .flat_map(leaf)
                .collect();
            store.insert(TileKey { level: 0, index }, tile);
        }
        for size in [1u64, 2, 3, 255, 256, 257, 511, 4096, 70_000, next] {
            let root = range_hashes(&store, &[(0, size)]).unwrap()[0];
            assert_eq!(root, roots[size as usize], "size {size}");
            for index in [0, size / 3, size - 1] {
                let path = custos_tlog::inclusion_path(index, size).unwrap();
                let proof = range_hashes(&store, &path).unwrap();
                custos_tlog::verify_inclusion(index, size, &leaf(index), &proof, &root).unwrap();
            }
            for old in [1, size / 2, size - 1] {
                let path = custos_tlog::consistency_path(old, size).unwrap();
                let proof = range_hashes(&store, &path).unwrap();
                custos_tlog::verify_consistency(old, size, &roots[old as usize], &root, &proof)
                    .unwrap();
            }
        }
        // A tree larger than the tiles hold is refused, not made up.
        assert!(range_hashes(&store, &[(0, next + 1)]).is_err());
    }

    #[test]
    fn a_hex_hash_is_its_bytes() {
        let h = "00ff".repeat(16);
        let raw = unhex32(h.as_bytes()).unwrap();
        assert_eq!(raw[..2], [0, 255]);
        assert_eq!(leaf_of_hex(h.as_bytes()), leaf_hash(&raw));
        assert_eq!(unhex32(b"zz"), None);
    }
}
