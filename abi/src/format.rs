//! [`Format`]: how a method's arguments and its result are encoded.

/// How a method's arguments or its result are encoded, as stored in [`MethodInfo`](crate::MethodInfo).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// MessagePack. Arguments: the argument tuple as an array (`add(2, 3)` is `[2, 3]`),
    /// or a map keyed by parameter name; empty input means no arguments. Results: the
    /// value, structs as maps.
    MessagePack = 0,
    /// The bytes as they are: a method whose only argument is `String`, `Vec<u8>`,
    /// `&str` or `&[u8]`, or whose result is `String`, `Vec<u8>`, `&str` or `&[u8]`
    /// (`&mut` too).
    Raw = 1,
    /// One rkyv archive, read in place. Arguments: the archive of the parameters' tuple
    /// (`&Archived<T>` is `T`, `&[u8]` is `Vec<u8>`, `&str` is `String`), in memory of
    /// the host's, 16-aligned and apart from the frame's `arena` (the runtime writes it at
    /// the front of the block it takes the call's arena from, and passes `arena` starting
    /// after it), validated by the module before use. Results: the archive of the value,
    /// in the call's arena.
    Archived = 2,
}

impl Format {
    /// The format for a raw tag, or `None` for a tag this ABI does not define.
    pub const fn from_u8(tag: u8) -> Option<Format> {
        match tag {
            0 => Some(Format::MessagePack),
            1 => Some(Format::Raw),
            2 => Some(Format::Archived),
            _ => None,
        }
    }

    /// Lower-case name, as `memlink inspect` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Format::MessagePack => "msgpack",
            Format::Raw => "raw",
            Format::Archived => "archived",
        }
    }
}
