//! Argument types like the ones modules take: what `#[memlink_export]` generates for a
//! multi-argument export, a record with strings, lists, options and enums, and
//! recursive data.

use serde::{Deserialize, Serialize};

/// The struct `#[memlink_export]` generates for `fn add(ctx, a: u32, b: u32)`: decoded
/// from `[a, b]` or `{"a": .., "b": ..}`, unknown keys refused.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, rename = "arguments of `add`")]
pub struct AddArgs {
    /// First operand.
    pub a: u32,
    /// Second operand.
    pub b: u32,
}

/// A user record with every kind of field an example takes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Profile {
    /// Id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Optional email.
    pub email: Option<String>,
    /// Raw bytes.
    pub avatar: Vec<u8>,
    /// A nested enum.
    pub role: Role,
    /// Nested records.
    pub friends: Vec<Friend>,
    /// Signed and floating numbers.
    pub balance: (i64, f64),
}

/// An enum with every kind of variant.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Role {
    /// Unit variant.
    Guest,
    /// Newtype variant.
    Member(u32),
    /// Tuple variant.
    Admin(String, Vec<u16>),
    /// Struct variant.
    Owner {
        /// Since when.
        since: i32,
        /// Delegates.
        delegates: Vec<Role>,
    },
}

/// A nested record.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Friend {
    /// Id.
    pub id: u32,
    /// Optional nickname.
    pub nick: Option<String>,
}

/// Recursive data through an enum: an expression tree.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Tree {
    /// A leaf value.
    Leaf(i32),
    /// One child.
    Neg(Box<Tree>),
    /// Two children.
    Add(Box<Tree>, Box<Tree>),
    /// Any number of children.
    List(Vec<Tree>),
}

impl Tree {
    /// Nesting depth, counted without recursion: a leaf is 0.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 0usize)];
        while let Some((t, d)) = stack.pop() {
            deepest = deepest.max(d);
            match t {
                Tree::Leaf(_) => {}
                Tree::Neg(c) => stack.push((c, d + 1)),
                Tree::Add(l, r) => {
                    stack.push((l, d + 1));
                    stack.push((r, d + 1));
                }
                Tree::List(items) => stack.extend(items.iter().map(|c| (c, d + 1))),
            }
        }
        deepest
    }

    /// `n` negations of a leaf: `{"Neg": {"Neg": ... {"Leaf": 7}}}`.
    pub fn chain(n: usize) -> Tree {
        (0..n).fold(Tree::Leaf(7), |t, _| Tree::Neg(Box::new(t)))
    }

    /// The MessagePack of [`Tree::chain`], built without recursion (so it works for
    /// depths that would overflow an encoder's stack).
    pub fn chain_bytes(n: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(5 * n + 7);
        for _ in 0..n {
            bytes.extend_from_slice(&[0x81, 0xa3, b'N', b'e', b'g']);
        }
        bytes.extend_from_slice(&[0x81, 0xa4, b'L', b'e', b'a', b'f', 0x07]);
        bytes
    }
}

impl Drop for Tree {
    /// Drops without recursion, so that a deep tree (which the decoder should have
    /// refused) cannot overflow the stack here and blame the wrong code.
    fn drop(&mut self) {
        fn take(t: &mut Tree, pending: &mut Vec<Tree>) {
            match t {
                Tree::Leaf(_) => {}
                Tree::Neg(c) => pending.push(std::mem::replace(&mut **c, Tree::Leaf(0))),
                Tree::Add(l, r) => {
                    pending.push(std::mem::replace(&mut **l, Tree::Leaf(0)));
                    pending.push(std::mem::replace(&mut **r, Tree::Leaf(0)));
                }
                Tree::List(items) => pending.append(items),
            }
        }
        let mut pending = Vec::new();
        take(self, &mut pending);
        while let Some(mut t) = pending.pop() {
            take(&mut t, &mut pending);
        }
    }
}

/// Recursive data through a newtype and an `Option`: a linked list of `Chain(None)`,
/// `Chain(Some(Chain(None)))`, ... rmp-serde encodes `Some(x)` as `x` and a newtype as
/// its content, so every such list encodes as a single nil.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Chain(pub Option<Box<Chain>>);
