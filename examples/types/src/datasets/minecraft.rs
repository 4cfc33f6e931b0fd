//! Player save data, nested, with enums and options: after rust_serialization_benchmark's
//! `minecraft_savedata` set (the same shape, a few fields fewer).

use rkyv::{Archive, Serialize};

use super::{checksum, Num, Rng};

/// Players in the benchmark's set, as in rust_serialization_benchmark.
pub const MINECRAFT_PLAYERS: usize = 500;

/// A game mode.
#[derive(
    Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq,
)]
pub enum GameType {
    /// Survival.
    Survival,
    /// Creative.
    Creative,
    /// Adventure.
    Adventure,
    /// Spectator.
    Spectator,
}

/// A world: an enum with a payload.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub enum Dimension {
    /// The overworld.
    Overworld,
    /// The nether.
    Nether,
    /// The end.
    End,
    /// A world of a mod, by name.
    Custom(String),
}

/// A stack of items in a slot.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Item {
    /// How many.
    pub count: i8,
    /// Where.
    pub slot: u8,
    /// What.
    pub id: String,
}

/// What a player may do.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Abilities {
    /// Walking speed.
    pub walk_speed: f32,
    /// Flying speed.
    pub fly_speed: f32,
    /// May fly.
    pub may_fly: bool,
    /// Is flying.
    pub flying: bool,
    /// Takes no damage.
    pub invulnerable: bool,
    /// May place blocks.
    pub may_build: bool,
    /// Builds instantly.
    pub instabuild: bool,
}

/// A position or a velocity.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Vec3d {
    /// X.
    pub x: f64,
    /// Y.
    pub y: f64,
    /// Z.
    pub z: f64,
}

/// A mob, on a shoulder or ridden.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Entity {
    /// Its kind.
    pub id: String,
    /// Where.
    pub pos: Vec3d,
    /// Its velocity.
    pub motion: Vec3d,
    /// Fallen so far.
    pub fall_distance: f32,
    /// Ticks left on fire.
    pub fire: u16,
    /// Air left.
    pub air: u16,
    /// Standing on something.
    pub on_ground: bool,
    /// Its id.
    pub uuid: [u32; 4],
    /// Its name tag, if any.
    pub custom_name: Option<String>,
}

/// What a player rides.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Vehicle {
    /// Low bits of the vehicle's id.
    pub uuid_low: u32,
    /// The vehicle.
    pub entity: Entity,
}

/// Recipes a player has seen.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct RecipeBook {
    /// Unlocked recipes.
    pub recipes: Vec<String>,
    /// Recipes not shown yet.
    pub to_be_displayed: Vec<String>,
    /// Filtering the craftable ones.
    pub is_filtering_craftable: bool,
    /// Book open.
    pub is_gui_open: bool,
}

/// One player's save data.
#[derive(Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Player {
    /// Game mode.
    pub game_type: GameType,
    /// The mode before, if it changed.
    pub previous_game_type: Option<GameType>,
    /// Score.
    pub score: u64,
    /// Where the player is.
    pub dimension: Dimension,
    /// Hotbar slot selected.
    pub selected_item_slot: u32,
    /// What is in it.
    pub selected_item: Item,
    /// Where the bed is, if not the overworld.
    pub spawn_dimension: Option<Dimension>,
    /// Spawn X.
    pub spawn_x: i64,
    /// Spawn Y.
    pub spawn_y: i64,
    /// Spawn Z.
    pub spawn_z: i64,
    /// Spawn forced, when set.
    pub spawn_forced: Option<bool>,
    /// Ticks asleep.
    pub sleep_timer: u16,
    /// Exhaustion.
    pub food_exhaustion_level: f32,
    /// Saturation.
    pub food_saturation_level: f32,
    /// Food timer.
    pub food_tick_timer: u32,
    /// Level.
    pub xp_level: u32,
    /// Progress to the next level.
    pub xp_p: f32,
    /// Experience.
    pub xp_total: i32,
    /// Enchantment seed.
    pub xp_seed: i32,
    /// The inventory.
    pub inventory: Vec<Item>,
    /// The ender chest.
    pub ender_items: Vec<Item>,
    /// Abilities.
    pub abilities: Abilities,
    /// Where the player last entered the nether.
    pub entered_nether_position: Option<Vec3d>,
    /// What the player rides.
    pub root_vehicle: Option<Vehicle>,
    /// A parrot on the left shoulder.
    pub shoulder_entity_left: Option<Entity>,
    /// A parrot on the right shoulder.
    pub shoulder_entity_right: Option<Entity>,
    /// Seen the end credits.
    pub seen_credits: bool,
    /// Recipes.
    pub recipe_book: RecipeBook,
}

/// An option's checksum: 0 for none, else one more than the value's.
macro_rules! opt {
    ($o:expr, |$v:ident| $e:expr) => {
        $o.as_ref().map_or(0u64, |$v| ($e).wrapping_add(1))
    };
}

checksum!(GameType, ArchivedGameType, |g| match g {
    Self::Survival => 1,
    Self::Creative => 2,
    Self::Adventure => 3,
    Self::Spectator => 4,
});

checksum!(Dimension, ArchivedDimension, |d| match d {
    Self::Overworld => 1,
    Self::Nether => 2,
    Self::End => 3,
    Self::Custom(name) => 4 + name.len() as u64,
});

checksum!(Item, ArchivedItem, |i| i.count.u()
    ^ (i.slot.u() << 8)
    ^ ((i.id.len() as u64) << 16));

checksum!(Abilities, ArchivedAbilities, |a| a
    .walk_speed
    .u()
    .wrapping_add(a.fly_speed.u())
    .wrapping_add(a.may_fly.u() + a.flying.u() + a.invulnerable.u())
    .wrapping_add(a.may_build.u() + a.instabuild.u()));

checksum!(Vec3d, ArchivedVec3d, |v| v
    .x
    .u()
    .wrapping_add(v.y.u())
    .wrapping_add(v.z.u()));

checksum!(Entity, ArchivedEntity, |e| (e.id.len() as u64)
    .wrapping_add(e.pos.checksum())
    .wrapping_add(e.motion.checksum())
    .wrapping_add(e.fall_distance.u() + e.fire.u() + e.air.u() + e.on_ground.u())
    .wrapping_add(e.uuid.iter().map(Num::u).sum::<u64>())
    .wrapping_add(opt!(e.custom_name, |n| n.len() as u64)));

checksum!(Vehicle, ArchivedVehicle, |v| v
    .uuid_low
    .u()
    .wrapping_add(v.entity.checksum()));

checksum!(RecipeBook, ArchivedRecipeBook, |r| {
    let names = r.recipes.iter().chain(r.to_be_displayed.iter());
    names
        .fold(0u64, |sum, name| sum.wrapping_add(name.len() as u64))
        .wrapping_add(r.is_filtering_craftable.u() + r.is_gui_open.u())
});

checksum!(Player, ArchivedPlayer, |p| {
    let head = (p.game_type.checksum())
        .wrapping_add(opt!(p.previous_game_type, |g| g.checksum()))
        .wrapping_add(p.score.u())
        .wrapping_add(p.dimension.checksum())
        .wrapping_add(p.selected_item_slot.u())
        .wrapping_add(p.selected_item.checksum())
        .wrapping_add(opt!(p.spawn_dimension, |d| d.checksum()))
        .wrapping_add(p.spawn_x.u() ^ p.spawn_y.u() ^ p.spawn_z.u())
        .wrapping_add(opt!(p.spawn_forced, |f| f.u()));
    let stats = (p.sleep_timer.u())
        .wrapping_add(p.food_exhaustion_level.u() ^ p.food_saturation_level.u())
        .wrapping_add(p.food_tick_timer.u() + p.xp_level.u())
        .wrapping_add(p.xp_p.u() ^ p.xp_total.u() ^ p.xp_seed.u());
    let rest = (p.inventory.checksum())
        .wrapping_add(p.ender_items.checksum().rotate_left(7))
        .wrapping_add(p.abilities.checksum())
        .wrapping_add(opt!(p.entered_nether_position, |v| v.checksum()))
        .wrapping_add(opt!(p.root_vehicle, |v| v.checksum()))
        .wrapping_add(opt!(p.shoulder_entity_left, |e| e.checksum()))
        .wrapping_add(opt!(p.shoulder_entity_right, |e| e.checksum()).rotate_left(3))
        .wrapping_add(p.seen_credits.u() + p.recipe_book.checksum());
    head.wrapping_add(stats).wrapping_add(rest)
});

const ITEMS: &[&str] = &[
    "dirt",
    "stone",
    "pickaxe",
    "sand",
    "gravel",
    "shovel",
    "chestplate",
    "steak",
];
const MOBS: &[&str] = &[
    "cow", "sheep", "zombie", "skeleton", "spider", "creeper", "parrot", "bee",
];
const NAMES: &[&str] = &[
    "rainbow", "princess", "steve", "johnny", "missy", "coward", "fairy", "howard",
];
const RECIPES: &[&str] = &[
    "dirt",
    "stone",
    "pickaxe",
    "sand",
    "gravel",
    "shovel",
    "chestplate",
    "steak",
    "torch",
    "crafting_table",
    "furnace",
    "bread",
    "bucket",
    "compass",
    "ladder",
    "bed",
];

/// `n` players, the same for the same seed.
pub fn generate_players(seed: u64, n: usize) -> Vec<Player> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| player(&mut rng)).collect()
}

fn game_type(rng: &mut Rng) -> GameType {
    [
        GameType::Survival,
        GameType::Creative,
        GameType::Adventure,
        GameType::Spectator,
    ][rng.below(4) as usize]
}

fn dimension(rng: &mut Rng) -> Dimension {
    match rng.below(4) {
        0 => Dimension::Overworld,
        1 => Dimension::Nether,
        2 => Dimension::End,
        _ => Dimension::Custom(format!("mod:world_{}", rng.below(100))),
    }
}

fn item(rng: &mut Rng) -> Item {
    Item {
        count: rng.next_u64() as i8,
        slot: rng.next_u64() as u8,
        id: rng.pick(ITEMS).to_owned(),
    }
}

fn vec3d(rng: &mut Rng) -> Vec3d {
    Vec3d {
        x: rng.unit_f64(),
        y: rng.unit_f64(),
        z: rng.unit_f64(),
    }
}

fn entity(rng: &mut Rng) -> Entity {
    Entity {
        id: rng.pick(MOBS).to_owned(),
        pos: vec3d(rng),
        motion: vec3d(rng),
        fall_distance: rng.unit_f32(),
        fire: rng.next_u64() as u16,
        air: rng.next_u64() as u16,
        on_ground: rng.coin(),
        uuid: [0; 4].map(|_: u32| rng.next_u64() as u32),
        custom_name: rng.maybe(|r| r.pick(NAMES).to_owned()),
    }
}

fn recipe_book(rng: &mut Rng) -> RecipeBook {
    let mut name = |r: &mut Rng| r.pick(RECIPES).to_owned();
    RecipeBook {
        recipes: rng.vec_of(64, &mut name),
        to_be_displayed: rng.vec_of(16, &mut name),
        is_filtering_craftable: rng.coin(),
        is_gui_open: rng.coin(),
    }
}

fn player(rng: &mut Rng) -> Player {
    Player {
        game_type: game_type(rng),
        previous_game_type: rng.maybe(game_type),
        score: rng.next_u64(),
        dimension: dimension(rng),
        selected_item_slot: rng.below(9) as u32,
        selected_item: item(rng),
        spawn_dimension: rng.maybe(dimension),
        spawn_x: rng.next_u64() as i64,
        spawn_y: rng.next_u64() as i64,
        spawn_z: rng.next_u64() as i64,
        spawn_forced: rng.maybe(Rng::coin),
        sleep_timer: rng.next_u64() as u16,
        food_exhaustion_level: rng.unit_f32(),
        food_saturation_level: rng.unit_f32(),
        food_tick_timer: rng.next_u64() as u32,
        xp_level: rng.next_u64() as u32,
        xp_p: rng.unit_f32(),
        xp_total: rng.next_u64() as i32,
        xp_seed: rng.next_u64() as i32,
        inventory: rng.vec_of(36, item),
        ender_items: rng.vec_of(27, item),
        abilities: abilities(rng),
        entered_nether_position: rng.maybe(vec3d),
        root_vehicle: rng.maybe(|r| Vehicle {
            uuid_low: r.next_u64() as u32,
            entity: entity(r),
        }),
        shoulder_entity_left: rng.maybe(entity),
        shoulder_entity_right: rng.maybe(entity),
        seen_credits: rng.coin(),
        recipe_book: recipe_book(rng),
    }
}

fn abilities(rng: &mut Rng) -> Abilities {
    Abilities {
        walk_speed: rng.unit_f32(),
        fly_speed: rng.unit_f32(),
        may_fly: rng.coin(),
        flying: rng.coin(),
        invulnerable: rng.coin(),
        may_build: rng.coin(),
        instabuild: rng.coin(),
    }
}
