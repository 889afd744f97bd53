"""Embedded name lists reflecting London's diversity, and the nicknames/spelling variants
agencies record instead of a legal forename.

All names are common given names and surnames; combined at random they describe nobody real.
"""

from __future__ import annotations

MALE_FORENAMES: tuple[str, ...] = tuple(
    dict.fromkeys(
        ["Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Muhammad", "Mohammed", "Mohamed", "Oscar", "Charlie", "Jacob", "Thomas", "Henry", "William", "James", "Joshua", "Alfie", "Freddie", "Archie", "Theo", "Isaac", "Joseph", "Alexander", "Samuel", "Daniel", "Logan", "Edward", "Lucas", "Max", "Mason", "Benjamin", "Adam", "Harrison", "Ethan", "Dylan", "Reggie", "Sebastian", "Elijah", "Rory", "Louie", "Jaxon", "Finley", "Hugo", "Albert", "Tommy", "Ronnie", "Frankie", "Ryan", "Luca", "Jude", "Zachary", "Liam", "Aaron", "Connor", "Callum", "Kieran", "Jordan", "Tyler", "Jamal", "Kwame", "Kofi", "Kwabena", "Chidi", "Chinedu", "Emeka", "Obinna", "Tunde", "Oluwaseun", "Olamide", "Ayodele", "Babajide", "Femi", "Segun", "Yusuf", "Ibrahim", "Abdullah", "Ahmed", "Ali", "Omar", "Hamza", "Bilal", "Idris", "Ismail", "Zayn", "Ayaan", "Aarav", "Arjun", "Rohan", "Vikram", "Rahul", "Sanjay", "Harpreet", "Gurpreet", "Jaspreet", "Amrit", "Imran", "Farhan", "Tariq", "Shahid", "Rizwan", "Abdul", "Rashid", "Hassan", "Hussein", "Mustafa", "Khalid", "Karim", "Samir", "Mehmet", "Emre", "Mustafa", "Burak", "Kemal", "Dimitri", "Nikolai", "Andrei", "Piotr", "Jakub", "Mateusz", "Tomasz", "Krzysztof", "Marek", "Luka", "Ivan", "Stefan", "Giorgos", "Nikos", "Marco", "Luca", "Matteo", "Giovanni", "Alessandro", "Diego", "Carlos", "Javier", "Mateo", "Santiago", "Pedro", "Tiago", "João", "Rafael", "Gabriel", "Kenji", "Hiroshi", "Wei", "Jun", "Hao", "Minh", "Duc", "Kyle", "Marcus", "Andre", "Darnell", "Tyrone", "Reece", "Jermaine", "Delroy", "Winston", "Desmond", "Leon", "Nathaniel", "Malachi", "Josiah", "Ezekiel", "Isaiah", "Caleb", "Micah", "Levi", "Ezra", "Sean", "Patrick", "Declan", "Ciarán", "Niall", "Cormac", "Eoin", "Dónal", "Rhys", "Owen", "Dafydd", "Gareth", "Euan", "Ewan", "Fraser", "Hamish", "Angus", "Robert", "Richard", "Michael", "David", "Paul", "Mark", "Stephen", "Peter", "Anthony", "Christopher", "Matthew", "Andrew", "Jonathan", "Nicholas", "Timothy", "Simon", "Kevin", "Lee", "Dean", "Wayne", "Craig", "Gary", "Darren", "Jason", "Scott", "Ricky", "Danny", "Jamie", "Billy", "Bradley", "Ashley", "Kai", "Jayden", "Jaden", "Tristan", "Kareem", "Amir", "Yasin", "Ilyas", "Musa", "Isa", "Dawit", "Tesfaye", "Abdi", "Mahad", "Abdirahman", "Faisal", "Samuel", "Emmanuel", "Kelechi", "Chukwuemeka"]
    )
)

FEMALE_FORENAMES: tuple[str, ...] = tuple(
    dict.fromkeys(
        ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia", "Grace", "Willow", "Freya", "Florence", "Emily", "Ella", "Poppy", "Evie", "Elsie", "Charlotte", "Evelyn", "Sienna", "Sofia", "Daisy", "Phoebe", "Sophie", "Alice", "Harper", "Matilda", "Ruby", "Emilia", "Maya", "Millie", "Isabelle", "Eva", "Luna", "Jessica", "Aria", "Elizabeth", "Erin", "Chloe", "Scarlett", "Hannah", "Lucy", "Layla", "Ellie", "Zara", "Maryam", "Aisha", "Fatima", "Khadija", "Amina", "Hafsa", "Zainab", "Safiya", "Hana", "Noor", "Iman", "Yasmin", "Samira", "Leila", "Laila", "Nadia", "Sana", "Ayesha", "Anaya", "Priya", "Anjali", "Kavya", "Diya", "Simran", "Harleen", "Jasleen", "Manpreet", "Gurleen", "Navdeep", "Sapna", "Nisha", "Pooja", "Shreya", "Riya", "Tanvi", "Amara", "Adaeze", "Chiamaka", "Ngozi", "Nneka", "Chioma", "Folake", "Funmilayo", "Yetunde", "Titilayo", "Abimbola", "Adaora", "Ama", "Akosua", "Abena", "Efua", "Esi", "Adwoa", "Naomi", "Precious", "Blessing", "Favour", "Grace", "Destiny", "Shanice", "Shantelle", "Tanisha", "Keisha", "Jade", "Chantelle", "Kayla", "Tia", "Aaliyah", "Nia", "Imani", "Zuri", "Malaika", "Hodan", "Ifrah", "Sagal", "Hibo", "Fadumo", "Ayan", "Ikram", "Rahel", "Selam", "Mekdes", "Marta", "Zofia", "Julia", "Natalia", "Katarzyna", "Agnieszka", "Magdalena", "Aleksandra", "Anastasia", "Ekaterina", "Irina", "Elena", "Ioana", "Andreea", "Maria", "Ana", "Alessia", "Giulia", "Francesca", "Chiara", "Lucía", "Carmen", "Inês", "Beatriz", "Mariana", "Camila", "Valentina", "Gabriela", "Daniela", "Mei", "Xin", "Ying", "Yuki", "Hana", "Linh", "Thao", "Siobhán", "Niamh", "Aoife", "Caoimhe", "Saoirse", "Róisín", "Ciara", "Orla", "Megan", "Bethan", "Cerys", "Eilidh", "Catriona", "Kirsty", "Fiona", "Sarah", "Rebecca", "Rachel", "Laura", "Emma", "Gemma", "Kelly", "Lisa", "Nicola", "Claire", "Joanne", "Michelle", "Donna", "Tracey", "Karen", "Julie", "Susan", "Helen", "Louise", "Victoria", "Katie", "Lauren", "Amy", "Danielle", "Stacey", "Leanne", "Hayley", "Courtney", "Paige", "Demi", "Brooke", "Kacey", "Tiana", "Shakira", "Esme", "Margaret", "Catherine", "Abigail", "Rebekah", "Bethany", "Eleanor", "Harriet", "Imogen", "Tilly", "Mollie", "Elif", "Zeynep", "Ayşe", "Defne", "Selin", "Esra", "Mariam", "Rania", "Hiba", "Dina", "Salma", "Asma", "Farah", "Mehreen", "Shazia", "Ruksana", "Shamima", "Tahmina", "Nusrat", "Sabrina", "Jasmine", "Renée", "Zoë", "Chloé", "Noémie", "Agnès", "Hélène"]
    )
)

# Surnames with spaces are multi-part surnames written with a space (e.g. "Da Silva").
SURNAMES: tuple[str, ...] = tuple(
    dict.fromkeys(
        s.replace("_", " ")
        for s in ["Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Begum", "Ali", "Ahmed", "Hussain", "Rahman", "Islam", "Uddin", "Miah", "Akhtar", "Chowdhury", "Hossain", "Mahmood", "Iqbal", "Shah", "Malik", "Butt", "Qureshi", "Siddiqui", "Sheikh", "Mirza", "Choudhury", "Sharma", "Gupta", "Kumar", "Mistry", "Shah", "Joshi", "Desai", "Mehta", "Kaur", "Sandhu", "Gill", "Dhillon", "Sidhu", "Grewal", "Bains", "Johal", "Rai", "Thakrar", "Pillai", "Nair", "Menon", "Fernando", "Perera", "Silva", "Okafor", "Okonkwo", "Nwosu", "Eze", "Obi", "Adeyemi", "Adebayo", "Okoro", "Oyelaran", "Ogunleye", "Afolabi", "Balogun", "Olawale", "Bankole", "Mensah", "Owusu", "Asante", "Boateng", "Osei", "Appiah", "Agyeman", "Darko", "Addo", "Ansah", "Mohamed", "Abdi", "Hassan", "Warsame", "Farah", "Jama", "Omar", "Yusuf", "Tesfaye", "Haile", "Gebre", "Bekele", "Wolde", "Campbell", "Brown", "Francis", "Grant", "Reid", "Henry", "Spencer", "Gordon", "Stewart", "Forbes", "McKenzie", "Blake", "Beckford", "Bailey", "Samuels", "Ferguson", "Nelson", "Fraser", "Murray", "O'Brien", "O'Connor", "O'Sullivan", "O'Neill", "O'Reilly", "O'Donnell", "D'Souza", "D'Costa", "D'Silva", "McCarthy", "McDonald", "MacLeod", "McLaughlin", "Gallagher", "Byrne", "Ryan", "Doyle", "Walsh", "Quinn", "Flynn", "Kowalski", "Nowak", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Popescu", "Ionescu", "Popa", "Dumitru", "Stan", "Petrov", "Ivanov", "Horvat", "Novak", "Kovač", "Papadopoulos", "Georgiou", "Constantinou", "Christodoulou", "Yilmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "García", "Rodríguez", "Martínez", "López", "González", "Hernández", "Pérez", "Sánchez", "Ramírez", "Gómez", "Muñoz", "Álvarez", "Pereira", "Santos", "Ferreira", "Oliveira", "Costa", "Rodrigues", "Gonçalves", "Almeida", "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Nguyen", "Tran", "Pham", "Le", "Hoang", "Kim", "Park", "Choi", "Tanaka", "Sato", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Ben-David", "Cohen", "Levy", "Abrahams", "Goldberg", "Mizrahi", "Da_Silva", "De_Souza", "Dos_Santos", "Van_der_Berg", "Van_Dijk", "De_La_Cruz", "Ní_Bhriain", "Ó_Briain", "Mac_an_tSaoir", "Al-Hassan", "Al-Rashid", "El-Amin", "Abu-Bakr", "Smith-Jones", "Taylor-Johnson", "Owusu-Ansah", "Boateng-Mensah", "Clarke-Williams", "Hughes-Davies", "Ahmed-Khan", "Morgan-Reid", "Lloyd-Webber", "Bowes-Lyon", "Fox-Pitt", "Phillips-Okoro", "Adeyemi-Brown", "Campbell-Grant", "Patel-Shah", "Nguyen-Tran", "Garcia-Lopez", "Fernández-Ruiz", "Scott-Thomas"]
    )
)

# Canonical forename (lower case) -> what else agencies write for the same person.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "william": ("Bill", "Will", "Billy", "Liam"),
    "robert": ("Bob", "Rob", "Bobby", "Robbie"),
    "richard": ("Rick", "Rich", "Dick"),
    "michael": ("Mike", "Mick", "Micky"),
    "james": ("Jim", "Jimmy", "Jamie"),
    "thomas": ("Tom", "Tommy"),
    "joseph": ("Joe", "Joey"),
    "daniel": ("Dan", "Danny"),
    "alexander": ("Alex", "Xander", "Sandy"),
    "christopher": ("Chris", "Kit"),
    "matthew": ("Matt",),
    "andrew": ("Andy", "Drew"),
    "anthony": ("Tony", "Ant"),
    "benjamin": ("Ben", "Benji"),
    "samuel": ("Sam", "Sammy"),
    "nicholas": ("Nick", "Nicky"),
    "edward": ("Ed", "Eddie", "Ted"),
    "frederick": ("Fred", "Freddie"),
    "jonathan": ("Jon", "Johnny"),
    "timothy": ("Tim",),
    "zachary": ("Zach", "Zak"),
    "nathaniel": ("Nate", "Nathan"),
    "harrison": ("Harry",),
    "jacob": ("Jake",),
    "oliver": ("Ollie",),
    "stephen": ("Steve", "Steven"),
    "peter": ("Pete",),
    "muhammad": ("Mohammed", "Mohamed", "Mohammad", "Mo"),
    "mohammed": ("Muhammad", "Mohamed", "Mohammad", "Mo"),
    "mohamed": ("Muhammad", "Mohammed", "Mohamad", "Mo"),
    "abdirahman": ("Abdi",),
    "abdullah": ("Abdul",),
    "ibrahim": ("Ebrahim", "Ibby"),
    "yusuf": ("Yousef", "Joseph"),
    "oluwaseun": ("Seun", "Shaun"),
    "babajide": ("Jide",),
    "chukwuemeka": ("Emeka",),
    "olamide": ("Lami",),
    "kwabena": ("Kobby",),
    "elizabeth": ("Liz", "Beth", "Lizzie", "Betty"),
    "margaret": ("Maggie", "Peggy", "Meg"),
    "catherine": ("Kate", "Cathy", "Katie", "Katherine"),
    "rebecca": ("Becky", "Becca"),
    "victoria": ("Vicky", "Tori"),
    "jessica": ("Jess",),
    "abigail": ("Abbie", "Abi"),
    "isabella": ("Bella", "Izzy"),
    "isabelle": ("Izzy", "Isabel"),
    "charlotte": ("Charlie", "Lottie"),
    "amelia": ("Millie", "Amy"),
    "eleanor": ("Ellie", "Nell"),
    "florence": ("Flo",),
    "natalia": ("Natasha", "Tasha"),
    "aleksandra": ("Ola", "Alexandra"),
    "katarzyna": ("Kasia", "Katherine"),
    "anastasia": ("Nastya",),
    "funmilayo": ("Funmi",),
    "titilayo": ("Titi",),
    "abimbola": ("Bimbo", "Bimpe"),
    "chiamaka": ("Amaka",),
    "aisha": ("Ayesha", "Aysha"),
    "fatima": ("Fatimah", "Fatma"),
    "maryam": ("Mariam", "Miriam"),
    "zainab": ("Zaynab",),
    "yasmin": ("Yasmine", "Jasmine"),
    "leila": ("Layla", "Laila"),
    "siobhán": ("Siobhan", "Shivaun"),
    "niamh": ("Neve",),
    "caoimhe": ("Keeva",),
    "saoirse": ("Seersha",),
    "zoë": ("Zoe",),
    "renée": ("Renee",),
}
