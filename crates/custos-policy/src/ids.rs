//! Dense ids for compiled policy elements and fixed-size bitsets over them.

use std::fmt;
use std::marker::PhantomData;

/// Most elements of one kind a policy may declare; sets are fixed-size bitsets of this width.
pub const MAX_ELEMENTS: usize = 256;
const WORDS: usize = MAX_ELEMENTS / 64;

macro_rules! dense_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) u16);

        impl $name {
            /// Position of the element in its policy's declaration order.
            pub fn index(self) -> usize {
                usize::from(self.0)
            }
        }

        impl DenseId for $name {
            fn from_index(i: usize) -> Self {
                Self(u16::try_from(i).unwrap_or(u16::MAX))
            }
            fn index(self) -> usize {
                usize::from(self.0)
            }
        }
    )*};
}

dense_id!(
    /// A compiled data category.
    CategoryId,
    /// A compiled purpose.
    PurposeId,
    /// A compiled accessor.
    AccessorId,
    /// A compiled recipient.
    RecipientId,
    /// A compiled service.
    ServiceId,
    /// A compiled record collection.
    CollectionId,
);

/// A dense id usable in an [`IdSet`].
pub trait DenseId: Copy {
    /// The id at a position.
    fn from_index(i: usize) -> Self;
    /// The position of the id.
    fn index(self) -> usize;
}

/// A set of dense ids, as a 256-bit bitset: copying and set algebra cost a few instructions.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdSet<T> {
    words: [u64; WORDS],
    _kind: PhantomData<T>,
}

/// A set of categories.
pub type CategorySet = IdSet<CategoryId>;
/// A set of purposes.
pub type PurposeSet = IdSet<PurposeId>;
/// A set of services.
pub type ServiceSet = IdSet<ServiceId>;

impl<T> Default for IdSet<T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<T> IdSet<T> {
    /// The empty set.
    pub const EMPTY: Self = Self {
        words: [0; WORDS],
        _kind: PhantomData,
    };

    /// Whether the set has no element.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Elements in either set.
    #[must_use]
    pub fn union(mut self, other: Self) -> Self {
        for (a, b) in self.words.iter_mut().zip(other.words) {
            *a |= b;
        }
        self
    }

    /// Elements in both sets.
    #[must_use]
    pub fn intersection(mut self, other: Self) -> Self {
        for (a, b) in self.words.iter_mut().zip(other.words) {
            *a &= b;
        }
        self
    }

    /// Elements of `self` not in `other`.
    #[must_use]
    pub fn difference(mut self, other: Self) -> Self {
        for (a, b) in self.words.iter_mut().zip(other.words) {
            *a &= !b;
        }
        self
    }

    /// Whether the sets share an element.
    pub fn intersects(&self, other: &Self) -> bool {
        self.words.iter().zip(other.words).any(|(a, b)| a & b != 0)
    }

    /// Whether every element of `self` is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.words.iter().zip(other.words).all(|(a, b)| a & !b == 0)
    }
}

impl<T: DenseId> IdSet<T> {
    /// Adds an element.
    pub fn insert(&mut self, id: T) {
        let i = id.index();
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Removes an element.
    pub fn remove(&mut self, id: T) {
        let i = id.index();
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    /// Whether the set holds an element.
    pub fn contains(&self, id: T) -> bool {
        let i = id.index();
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// The elements, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut bits = w;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(T::from_index(wi * 64 + b))
            })
        })
    }
}

impl<T: DenseId> FromIterator<T> for IdSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut s = Self::EMPTY;
        for id in iter {
            s.insert(id);
        }
        s
    }
}

impl<T: DenseId + fmt::Debug> fmt::Debug for IdSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_algebra() {
        let a: CategorySet = [0, 5, 64, 255].map(CategoryId).into_iter().collect();
        let b: CategorySet = [5, 200].map(CategoryId).into_iter().collect();
        assert_eq!(a.len(), 4);
        assert!(a.contains(CategoryId(255)) && !a.contains(CategoryId(1)));
        assert_eq!(
            a.intersection(b).iter().collect::<Vec<_>>(),
            vec![CategoryId(5)]
        );
        assert_eq!(a.union(b).len(), 5);
        assert!(a.difference(b).is_subset(&a) && !a.difference(b).contains(CategoryId(5)));
        assert!(a.intersects(&b));
        let mut c = a;
        c.remove(CategoryId(64));
        assert_eq!(c.len(), 3);
        assert!(CategorySet::EMPTY.is_empty());
    }
}
