//! Deserializing "a string or a map" and "one or many" values by the shape of the input, so a
//! mistake inside the map is reported as itself ("unknown field `bdy`") at its own path, instead
//! of serde's untagged "data did not match any variant".

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{self, MapAccess, SeqAccess, Unexpected, Visitor};

/// A type that reads differently depending on whether YAML gave a scalar, a map or a list.
/// Every method defaults to a type error naming [`ByShape::EXPECTING`].
pub trait ByShape<'de>: Sized {
    /// What the type accepts, for error messages ("a string or a map").
    const EXPECTING: &'static str;

    /// From a string.
    fn from_str<E: de::Error>(text: &str) -> Result<Self, E> {
        Err(E::invalid_type(
            Unexpected::Str(text),
            &Expecting(Self::EXPECTING),
        ))
    }

    /// From a boolean.
    fn from_bool<E: de::Error>(value: bool) -> Result<Self, E> {
        Err(E::invalid_type(
            Unexpected::Bool(value),
            &Expecting(Self::EXPECTING),
        ))
    }

    /// From an integer.
    fn from_i64<E: de::Error>(value: i64) -> Result<Self, E> {
        Err(E::invalid_type(
            Unexpected::Signed(value),
            &Expecting(Self::EXPECTING),
        ))
    }

    /// From a float.
    fn from_f64<E: de::Error>(value: f64) -> Result<Self, E> {
        Err(E::invalid_type(
            Unexpected::Float(value),
            &Expecting(Self::EXPECTING),
        ))
    }

    /// From a map.
    fn from_map<A: MapAccess<'de>>(_map: A) -> Result<Self, A::Error> {
        Err(de::Error::invalid_type(
            Unexpected::Map,
            &Expecting(Self::EXPECTING),
        ))
    }

    /// From a list.
    fn from_seq<A: SeqAccess<'de>>(_seq: A) -> Result<Self, A::Error> {
        Err(de::Error::invalid_type(
            Unexpected::Seq,
            &Expecting(Self::EXPECTING),
        ))
    }
}

/// Deserializes `T` by the shape of the input; call it from `T`'s `Deserialize` impl.
pub fn deserialize<'de, D: Deserializer<'de>, T: ByShape<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_any(ShapeVisitor(PhantomData))
}

struct Expecting(&'static str);

impl de::Expected for Expecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

struct ShapeVisitor<T>(PhantomData<T>);

impl<'de, T: ByShape<'de>> Visitor<'de> for ShapeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        T::from_str(text)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<T, E> {
        T::from_bool(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        T::from_i64(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        match i64::try_from(value) {
            Ok(value) => T::from_i64(value),
            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        T::from_f64(value)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::from_seq(seq)
    }
}

/// Implements `Deserialize` for types that implement [`ByShape`].
#[macro_export]
macro_rules! deserialize_by_shape {
    ($($ty:ty),* $(,)?) => {$(
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::shape::deserialize(deserializer)
            }
        }
    )*};
}

/// Implements `Deserialize` for an enum read from either a string or a map:
/// `string_or_map!(Type, Type::StringVariant, Type::MapVariant, "what it accepts")`.
#[macro_export]
macro_rules! string_or_map {
    ($ty:ty, $text:path, $map:path, $expecting:literal) => {
        impl<'de> $crate::shape::ByShape<'de> for $ty {
            const EXPECTING: &'static str = $expecting;

            fn from_str<E: ::serde::de::Error>(text: &str) -> Result<Self, E> {
                Ok($text(text.to_owned()))
            }

            fn from_map<A: ::serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
                ::serde::Deserialize::deserialize(::serde::de::value::MapAccessDeserializer::new(
                    map,
                ))
                .map($map)
            }
        }

        $crate::deserialize_by_shape!($ty);
    };
}
