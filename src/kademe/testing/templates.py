"""The words synthetic Yargıtay decisions are made of: names, places, topics and the decision's set phrases.

Templates only (``kademe.testing.sample`` assembles decisions from them): ``{placeholders}`` are
filled with seeded parties, places, amounts and dates; no real decision text is used.
"""

from __future__ import annotations

from typing import NamedTuple

FIRST_NAMES = (
    "Ahmet", "Mehmet", "Ayşe", "Fatma", "Mustafa", "Emine", "Hüseyin", "Hatice", "İbrahim", "Zeynep",
    "Ömer", "Şükrü", "Gülşen", "Çağrı", "Özlem", "Ümit", "Ercan", "Selin", "Burak", "Derya", "Oğuz",
    "Nurcan", "Kadir", "Sibel", "Yusuf", "Elif", "Murat", "Şerife", "Halil", "Büşra", "Tuğba", "Cengiz",
    "Gökhan", "İlknur", "Serkan", "Aysel", "Recep", "Melek", "Volkan", "Şule", "Erdem", "Filiz", "Tayfun",
    "Gülay", "Koray", "Hülya", "İsmail", "Sevgi", "Barış", "Nihal", "Orhan", "Dilek", "Cem", "Yasemin",
    "Levent", "Songül", "Ertuğrul", "Pınar", "Ali", "Hacer", "Sinan", "Esra", "Doğan", "Özge", "Kemal",
)
LAST_NAMES = (
    "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Yıldırım", "Öztürk", "Aydın", "Özdemir",
    "Arslan", "Doğan", "Kılıç", "Aslan", "Çetin", "Kara", "Koç", "Kurt", "Özkan", "Şimşek", "Polat",
    "Korkmaz", "Karataş", "Erdoğan", "Güneş", "Aktaş", "Bulut", "Keskin", "Ünal", "Güler", "Taşdemir",
    "Işık", "Çakır", "Sarı", "Tekin", "Bozkurt", "Akgül", "Uçar", "Gündoğdu", "Ağaoğlu", "Türkmen",
    "Başaran", "Erkan", "Coşkun", "Duman", "Karakuş", "Sönmez", "Gök", "Ekinci", "Durmaz", "Tuncer",
    "Altıntaş", "Çiftçi", "Eren", "Ateş", "Bayram", "Kaplan", "Savaş", "Işıklı", "Köse", "Özçelik",
)
CITIES: dict[str, tuple[str, ...]] = {
    "İstanbul": ("Kadıköy", "Üsküdar", "Bakırköy", "Kartal", "Beşiktaş", "Şişli", "Pendik", "Esenyurt"),
    "Ankara": ("Çankaya", "Keçiören", "Yenimahalle", "Mamak", "Etimesgut", "Sincan"),
    "İzmir": ("Karşıyaka", "Bornova", "Buca", "Konak", "Çiğli", "Torbalı"),
    "Bursa": ("Osmangazi", "Nilüfer", "Yıldırım", "İnegöl", "Gemlik"),
    "Antalya": ("Muratpaşa", "Kepez", "Alanya", "Manavgat", "Serik"),
    "Adana": ("Seyhan", "Çukurova", "Yüreğir", "Ceyhan", "Kozan"),
    "Konya": ("Selçuklu", "Meram", "Karatay", "Ereğli", "Akşehir"),
    "Gaziantep": ("Şahinbey", "Şehitkamil", "Nizip", "İslahiye"),
    "Kayseri": ("Melikgazi", "Kocasinan", "Talas", "Develi"),
    "Samsun": ("İlkadım", "Atakum", "Bafra", "Çarşamba"),
    "Trabzon": ("Ortahisar", "Akçaabat", "Of", "Vakfıkebir"),
    "Erzurum": ("Yakutiye", "Palandöken", "Oltu", "Horasan"),
    "Diyarbakır": ("Bağlar", "Kayapınar", "Yenişehir", "Ergani", "Silvan"),
    "Eskişehir": ("Odunpazarı", "Tepebaşı", "Sivrihisar"),
    "Mersin": ("Toroslar", "Tarsus", "Erdemli", "Silifke", "Mezitli"),
    "Kocaeli": ("İzmit", "Gebze", "Darıca", "Gölcük", "Körfez"),
    "Sakarya": ("Adapazarı", "Serdivan", "Hendek", "Akyazı"),
    "Manisa": ("Yunusemre", "Şehzadeler", "Akhisar", "Turgutlu", "Salihli"),
    "Denizli": ("Pamukkale", "Merkezefendi", "Çivril", "Tavas"),
    "Balıkesir": ("Altıeylül", "Karesi", "Bandırma", "Edremit", "Ayvalık"),
    "Şanlıurfa": ("Eyyübiye", "Haliliye", "Siverek", "Viranşehir"),
    "Van": ("İpekyolu", "Tuşba", "Erciş", "Muradiye"),
    "Tekirdağ": ("Süleymanpaşa", "Çorlu", "Çerkezköy", "Malkara"),
    "Hatay": ("Antakya", "İskenderun", "Defne", "Dörtyol"),
    "Muğla": ("Menteşe", "Bodrum", "Fethiye", "Milas", "Marmaris"),
    "Aydın": ("Efeler", "Nazilli", "Söke", "Kuşadası", "Didim"),
}
BAM_CITIES = ("İstanbul", "Ankara", "İzmir", "Bursa", "Antalya", "Adana", "Gaziantep", "Konya",
              "Kayseri", "Samsun", "Trabzon", "Erzurum", "Diyarbakır", "Van", "Sakarya")
NEIGHBOURHOODS = ("Cumhuriyet", "Atatürk", "Yeşilova", "Fatih", "Gazi", "Hürriyet", "Bahçelievler", "Kocatepe",
                  "Çamlık", "Esentepe", "Yenidoğan", "Güzelyalı", "Karşıyaka", "Şirinevler", "İnönü", "Zafer")
SECTORS = ("İnşaat Taahhüt", "Tekstil", "Gıda", "Lojistik", "Otomotiv", "Enerji", "Turizm", "Plastik",
           "Mobilya", "Madencilik", "Bilişim", "Tarım Ürünleri", "Metal", "Temizlik Hizmetleri", "Ambalaj")
COMPANY_SUFFIXES = ("Sanayi ve Ticaret A.Ş.", "Ltd. Şti.", "Sanayi Ticaret Ltd. Şti.", "A.Ş.")
INSURER_PREFIXES = ("Güven", "Umut", "Kalkan", "Doğa", "Marmara", "Ege", "Toros", "Kardelen", "Anadolu Yıldızı")
JOBS = ("forklift operatörü", "kasiyer", "güvenlik görevlisi", "muhasebe elemanı", "inşaat ustası", "şoför",
        "aşçı", "satış temsilcisi", "depo sorumlusu", "makine operatörü", "temizlik personeli", "kaynak ustası",
        "garson", "hemşire", "bilgi işlem uzmanı")
ITEMS = ("cep telefonu", "altın bilezik", "dizüstü bilgisayar", "motosiklet", "bakır kablo", "el çantası",
         "bisiklet", "tablet bilgisayar", "inşaat demiri", "jeneratör")
WEAPONS = ("bıçak", "sopa", "taş", "kırık şişe", "demir çubuk", "tornavida")
DRUGS = ("esrar", "metamfetamin", "sentetik kannabinoid", "kokain", "eroin", "ecstasy hap")


class _Topic(NamedTuple):
    konu: str
    ceza: bool
    chambers: tuple[str, ...]
    courts: tuple[str, ...]
    defendant: str  # "company", "insurer" or "person"
    facts: tuple[str, ...]
    reasons: tuple[str, ...]


_IS = ("9. Hukuk Dairesi",)
TOPICS: tuple[_Topic, ...] = (
    _Topic("İşçilik alacağı", False, _IS, ("İş Mahkemesi",), "company", (
        "Davacı vekili dava dilekçesinde; müvekkili {davaci} ile davalı {davali} arasında {tarih} tarihinde başlayan iş ilişkisinde davacının {meslek} olarak çalıştığını, haftada ortalama {saat} saat fazla çalışma yaptığı halde karşılığının ödenmediğini, son aylık brüt ücretinin {aylik} olduğunu ileri sürerek fazla çalışma, yıllık izin ve genel tatil ücreti alacaklarının faiziyle tahsilini talep etmiştir.",
        "Davacı vekili, müvekkilinin {sehir} ilindeki işyerinde {tarih} ile {tarih} tarihleri arasında {meslek} olarak kesintisiz çalıştığını, {ay} aylık ücretinin eksik ödendiğini ve bayram günlerinde de çalıştırıldığını belirterek şimdilik {tutar} ücret alacağının tahsilini istemiştir.",
        "Dava dilekçesinde, davacının davalı {davali} nezdinde vardiyalı sistemde günde {saat} saat çalıştırıldığı, hafta tatili kullandırılmadığı ve {tutar} tutarındaki ikramiye alacağının ödenmediği iddia edilmiştir."), (
        "4857 sayılı İş Kanunu'nun 41. maddesine göre fazla çalışma, Kanunda yazılı koşullar çerçevesinde haftalık kırkbeş saati aşan çalışmalardır; fazla çalışma yapıldığını ispat yükü işçiye aittir ve bu husus yazılı belge veya tanık beyanı ile kanıtlanabilir.",
        "Somut olayda hükme esas alınan {tarih} tarihli bilirkişi raporunda, davacının haftalık {saat} saat fazla çalışma yaptığı kabul edilerek {tutar} fazla çalışma ücreti hesaplanmış ise de, tanıkların davacı ile aynı dönemde çalışıp çalışmadığı denetlenmemiştir.",
        "Yıllık ücretli izin alacağı yönünden, 4857 sayılı Kanun'un 59. maddesi uyarınca sözleşmenin herhangi bir nedenle sona ermesi halinde kullanılmayan izin sürelerine ait ücretin son ücret üzerinden ödenmesi gerekir; izinlerin kullandırıldığını ispat yükü ise işverene düşer.",
        "Ulusal bayram ve genel tatil günlerinde çalışıldığı iddiası bakımından, imzalı ücret bordrolarında bu alacağa ilişkin tahakkuk bulunması halinde bordroların ihtirazi kayıt ileri sürülmeden imzalandığı gözetilmelidir.",
        "Tanık beyanlarına dayanılarak hesaplanan fazla çalışma alacağından yüzde {oran} oranında hakkaniyet indirimi yapılması Dairemizin yerleşik uygulamasına uygun olup bu yöndeki temyiz itirazı yerinde değildir.")),
    _Topic("Kıdem ve ihbar tazminatı", False, _IS, ("İş Mahkemesi",), "company", (
        "Davacı vekili, müvekkili {davaci} ile davalı {davali} arasındaki iş sözleşmesinin {tarih} tarihinde haklı bir neden bulunmaksızın işverence feshedildiğini, davacının yaklaşık {yil} yıl {meslek} olarak çalıştığını belirterek kıdem ve ihbar tazminatının en yüksek mevduat faiziyle tahsilini talep etmiştir.",
        "Dava dilekçesinde, davacının ücretlerinin {ay} ay boyunca düzenli ödenmemesi nedeniyle {tarih} tarihli noter ihtarnamesi ile iş sözleşmesini haklı nedenle feshettiği, buna rağmen {tutar} tutarındaki kıdem tazminatının ödenmediği ileri sürülmüştür.",
        "Davacı, {sehir} ilinde faaliyet gösteren davalı şirkette {tarih} tarihinde işe başladığını, işyerinin devri sırasında kıdeminin sıfırlandığını ve sözleşmenin sözlü olarak sona erdirildiğini beyanla kıdem ve ihbar tazminatı farkı olarak {tutar} istemiştir."), (
        "1475 sayılı İş Kanunu'nun yürürlükteki 14. maddesine göre kıdem tazminatına hak kazanabilmek için işçinin en az bir yıl çalışmış olması ve iş sözleşmesinin bu maddede sayılan hallerden biriyle sona ermesi gerekir.",
        "İhbar tazminatı yönünden 4857 sayılı İş Kanunu'nun 17. maddesinde belirtilen bildirim sürelerine uyulmaksızın sözleşmeyi fesheden tarafın, bildirim süresine ait ücret tutarında tazminat ödemesi gerektiği açıktır.",
        "İşçinin son brüt ücretine ek olarak düzenli biçimde ödenen yol, yemek ve ikramiye gibi parasal menfaatlerin giydirilmiş ücrete dahil edilmesi gerekirken, {tarih} tarihli bilirkişi raporunda bu kalemlerin dikkate alınmadığı anlaşılmaktadır.",
        "Davalı işveren, davacının {tarih} tarihinden itibaren üst üste {gun} gün işe gelmediğini ve sözleşmenin 4857 sayılı Kanun'un 25/II-g maddesi uyarınca feshedildiğini savunmuş ise de, devamsızlık tutanakları tanık anlatımlarıyla doğrulanmamıştır.",
        "Kıdem tazminatının hesabında, davacının {sehir} ilindeki işyerinde geçen hizmet süresi ile aynı işverene ait diğer işyerlerindeki çalışmaların birleştirilmesi gerektiği gözetilmelidir.")),
    _Topic("İşe iade", False, _IS, ("İş Mahkemesi",), "company", (
        "Davacı vekili, müvekkili {davaci} hakkında davalı {davali} tarafından {tarih} tarihinde performans düşüklüğü gerekçesiyle yapılan feshin geçerli nedene dayanmadığını ileri sürerek feshin geçersizliğine ve işe iadesine karar verilmesini talep etmiştir.",
        "Davacı {davaci}, {meslek} olarak çalıştığı işyerinde sendikaya üye olmasının ardından {tarih} tarihinde iş sözleşmesinin ekonomik kriz gerekçesiyle feshedildiğini, gerçek fesih nedeninin sendikal faaliyet olduğunu belirterek işe iadesini istemiştir.",
        "Dava dilekçesinde, işyerinde {kisi_sayi} işçi çalıştığı, davacının {yil} yılı aşkın kıdeme sahip olduğu ve fesihten önce savunmasının alınmadığı ileri sürülerek işe iade talep edilmiştir."), (
        "4857 sayılı İş Kanunu'nun 18. maddesi uyarınca otuz veya daha fazla işçi çalıştıran işyerlerinde en az altı aylık kıdemi olan işçinin belirsiz süreli sözleşmesini fesheden işveren, işçinin yeterliliğinden veya davranışlarından ya da işletmenin gereklerinden kaynaklanan geçerli bir sebebe dayanmak zorundadır.",
        "Aynı Kanun'un 20. maddesinin üçüncü fıkrası gereğince feshin geçerli bir sebebe dayandığını ispat yükü işverene aittir; işçi ise feshin başka bir sebebe dayandığını iddia ettiği takdirde bu iddiasını ispatla yükümlüdür.",
        "İşletmesel kararla yapılan fesihlerde, kararın tutarlı biçimde uygulanıp uygulanmadığı, feshin kaçınılmaz olup olmadığı ve {tarih} tarihinden sonra işyerine yeni işçi alınıp alınmadığı mahkemece araştırılmalıdır.",
        "Boşta geçen süre ücreti ile işe başlatmama tazminatının 4857 sayılı Kanun'un 21. maddesi uyarınca belirlenmesi gerekir; somut olayda {ay} aylık ücret tutarında tazminat takdiri işyerindeki kıdem ve fesih nedeni gözetildiğinde isabetlidir.",
        "Performans düşüklüğüne dayanan fesihlerde, objektif ölçütlere dayalı bir değerlendirme sisteminin bulunduğu, işçinin bu sistemden önceden haberdar edildiği ve {tarih} tarihli yazılı savunmasının alındığı somut delillerle kanıtlanmalıdır.")),
    _Topic("Tapu iptali ve tescil", False, ("1. Hukuk Dairesi", "7. Hukuk Dairesi"), ("Asliye Hukuk Mahkemesi",), "person", (
        "Davacı vekili, {sehir} ili {ilce} ilçesi {mahalle} Mahallesi {ada} ada {parsel} parsel sayılı taşınmazın müvekkili {davaci} tarafından {tarih} tarihinde bedeli ödenerek satın alındığını, ancak tapuda davalı {davali} adına kayıtlı kaldığını ileri sürerek tapu kaydının iptali ile tescil istemiştir.",
        "Davacı {davaci}, murisin {tarih} tarihinde {mahalle} Mahallesindeki {ada} ada {parsel} parsel sayılı taşınmazını mirasçılardan mal kaçırmak amacıyla davalıya satış gibi gösterip bağışladığını ileri sürerek muris muvazaası nedeniyle tapu iptali ve miras payı oranında tescil talep etmiştir.",
        "Dava dilekçesinde, davalı {davali} tarafından {tutar} bedel karşılığında taşınmazın devri üstlenildiği halde devir işleminin yapılmadığı, davacının {yil} yıldır taşınmazı zilyetliğinde bulundurduğu belirtilmiştir."), (
        "4721 sayılı Türk Medeni Kanunu'nun 1025. maddesine göre, yolsuz tescil nedeniyle ayni hakkı zedelenen kimse tapu kütüğündeki tescilin düzeltilmesini dava edebilir; ancak iyiniyetli üçüncü kişilerin kazanımları aynı Kanun'un 1023. maddesi ile korunmaktadır.",
        "01.04.1974 tarihli ve 1/2 sayılı İçtihadı Birleştirme Kararı uyarınca, murisin gerçek amacının mal kaçırmak olup olmadığı; taşınmazın değeri ile satış bedeli arasındaki fark ve murisin satış yapmakta makul bir nedeninin bulunup bulunmadığı birlikte değerlendirilmelidir.",
        "Taşınmaz satış vaadi ve harici satış sözleşmeleri 6098 sayılı Türk Borçlar Kanunu'nun 237. maddesi ile 4721 sayılı Kanun'un 706. maddesi gereğince resmi şekilde yapılmadıkça geçerli olmadığından, davacının ancak ödediği {tutar} bedelin iadesini isteyebileceği gözetilmelidir.",
        "Mahallinde yapılan {tarih} tarihli keşifte dinlenen yerel bilirkişi ve tanıkların, taşınmazın {yil} yıldan beri davacı tarafından ekilip biçildiğine ilişkin beyanlarının tapu kayıtları ve hava fotoğrafları ile karşılaştırılması gerekir.",
        "Dava konusu {ada} ada {parsel} parsel sayılı taşınmazın dava tarihindeki değerinin keşif yoluyla belirlenmemesi nedeniyle harç ve vekalet ücretine esas değerin tespit edilmemiş olması da usule aykırıdır.")),
    _Topic("Boşanma ve nafaka", False, ("2. Hukuk Dairesi",), ("Aile Mahkemesi",), "person", (
        "Davacı {davaci}, davalı {davali} ile {tarih} tarihinde evlendiklerini, davalının ekonomik şiddet uyguladığını ve ortak konutu terk ettiğini ileri sürerek evlilik birliğinin temelinden sarsılması sebebiyle boşanmalarına ve aylık {aylik} tedbir ve yoksulluk nafakasına karar verilmesini istemiştir.",
        "Davacı {davaci}, taraflar arasında {yil} yıldır süren şiddetli geçimsizlik bulunduğunu, davalının ailesinin evliliğe sürekli müdahale ettiğini belirterek boşanmalarına ve {tutar} manevi tazminata hükmedilmesini talep etmiştir.",
        "Dava dilekçesinde, tarafların {sehir} ilinde ortak hayat sürdükleri, {tarih} tarihinden bu yana ayrı yaşadıkları ve barışma imkânının kalmadığı ileri sürülerek boşanma ile birlikte iştirak nafakası istenmiştir."), (
        "4721 sayılı Türk Medeni Kanunu'nun 166. maddesinin birinci fıkrasına göre evlilik birliği, ortak hayatı sürdürmeleri kendilerinden beklenmeyecek derecede temelinden sarsılmış olursa eşlerden her biri boşanma davası açabilir.",
        "Toplanan delillerden, davalının eşine karşı {tarih} tarihinde fiziksel şiddet uyguladığı, davacının ise güven sarsıcı davranışlarda bulunduğu anlaşılmakla, boşanmaya sebep olan olaylarda tarafların eşit kusurlu olduğu kabul edilmelidir.",
        "Yoksulluk nafakası, Türk Medeni Kanunu'nun 175. maddesi uyarınca boşanma yüzünden yoksulluğa düşecek olan ve kusuru daha ağır olmayan tarafa diğer tarafın mali gücü oranında takdir edilir; davacının aylık {aylik} geliri bulunduğu dikkate alınmalıdır.",
        "Tarafların sosyal ve ekonomik durumları, kusurun ağırlığı ve hakkaniyet ilkesi gözetildiğinde, Türk Medeni Kanunu'nun 174/2. maddesi uyarınca takdir edilen {tutar} manevi tazminat fazla olup daha uygun bir miktarın belirlenmesi gerekir.",
        "Yaptırılan sosyal ve ekonomik durum araştırmasında, davalının {sehir} ilinde {meslek} olarak çalıştığı ve aylık {aylik} gelir elde ettiği bildirilmiştir.")),
    _Topic("Velayet", False, ("2. Hukuk Dairesi",), ("Aile Mahkemesi",), "person", (
        "Davacı {davaci}, boşanma kararıyla velayeti davalıya bırakılan müşterek çocuk {cocuk} ile davalının ilgilenmediğini, çocuğun okul devamsızlığının arttığını ileri sürerek velayetin kendisine verilmesini ve aylık {aylik} iştirak nafakası istemiştir.",
        "Davacı {davaci}, {tarih} tarihinde kesinleşen boşanma kararından sonra davalı {davali} tarafından çocuğun {sehir2} iline götürüldüğünü ve kişisel ilişki kurulmasının engellendiğini belirterek velayetin değiştirilmesini talep etmiştir.",
        "Dava dilekçesinde, {yas} yaşındaki müşterek çocuk {cocuk} yönünden kişisel ilişkinin yeniden düzenlenmesi ve iştirak nafakasının {aylik} tutarına yükseltilmesi istenmiştir."), (
        "4721 sayılı Türk Medeni Kanunu'nun 183. maddesi uyarınca durumun değişmesi üzerine velayetin düzenlenmesinde çocuğun üstün yararı esas alınır; ana ve babanın eğitim durumu, ekonomik imkânları ve çocukla kurdukları bağ birlikte değerlendirilmelidir.",
        "Çocuk Haklarına Dair Sözleşme'nin 12. maddesi gereğince idrak çağındaki çocuğun velayet konusunda görüşünün alınması zorunlu olduğu halde {yas} yaşındaki {cocuk} dinlenmeden hüküm kurulmuştur.",
        "Uzman pedagog aracılığıyla {tarih} tarihinde düzenlenen sosyal inceleme raporunda, çocuğun annesinin yanında kalmak istediği ve {ilce} ilçesindeki konutun çocuğun gelişimine elverişli olduğu tespit edilmiştir.",
        "İştirak nafakası belirlenirken Türk Medeni Kanunu'nun 182. maddesi uyarınca çocuğun ihtiyaçları ile ana ve babanın ekonomik güçleri dikkate alınmalıdır; hükmedilen aylık {aylik} nafaka hakkaniyete uygundur.")),
    _Topic("Kira tespiti", False, ("3. Hukuk Dairesi",), ("Sulh Hukuk Mahkemesi",), "person", (
        "Davacı {davaci}, {sehir} ili {ilce} ilçesi {mahalle} Mahallesinde bulunan ve davalı {davali} tarafından {tarih} başlangıç tarihli sözleşme ile kiralanan işyerinin kira bedelinin emsallerine göre düşük kaldığını ileri sürerek yeni dönem kira bedelinin aylık {aylik} olarak tespitini istemiştir.",
        "Davacı, taraflar arasındaki kira ilişkisinin {yil} yılı aştığını, mevcut aylık {aylik} kira bedelinin piyasa koşullarının çok altında kaldığını belirterek 6098 sayılı Türk Borçlar Kanunu'nun 344. maddesi uyarınca kira bedelinin belirlenmesini talep etmiştir.",
        "Dava dilekçesinde, {mahalle} Mahallesindeki konutun kira bedelinin {tarih} tarihinden itibaren geçerli olmak üzere yeniden belirlenmesi istenmiş, davalı kiracı {davali} ise bedelin fahiş olduğunu savunmuştur."), (
        "6098 sayılı Türk Borçlar Kanunu'nun 344. maddesine göre beş yıldan uzun süreli kira sözleşmelerinde yeni kira yılının bedeli, üretici fiyat endeksindeki artış oranı, kiralananın durumu ve emsal kira bedelleri gözetilerek hakkaniyete uygun biçimde belirlenir.",
        "Bilirkişi kurulunca {tarih} tarihinde düzenlenen raporda, taşınmazın {mahalle} Mahallesindeki konumu ve yüzölçümü dikkate alınarak emsal kira bedelinin aylık {aylik} olabileceği bildirilmiş, ancak emsal sözleşmeler dosyaya getirtilmemiştir.",
        "Emsal karşılaştırmasında emsal sözleşmelerin dava konusu taşınmaza yakın yerde bulunması ve benzer nitelik taşıması gerekir; yeni kiralanan yerlerin bedelleri ile eski kiracılara ait bedeller arasındaki fark hakkaniyet indirimiyle giderilmelidir.",
        "Mahkemece belirlenen bedelden yüzde {oran} oranında hakkaniyet indirimi yapılması, kiracının {yil} yıldır taşınmazda bulunduğu gözetildiğinde yerindedir.")),
    _Topic("Tahliye", False, ("3. Hukuk Dairesi",), ("Sulh Hukuk Mahkemesi",), "person", (
        "Davacı {davaci}, davalı kiracıya {tarih} tarihinde keşide edilen ihtarname ile birikmiş {tutar} kira borcunun ödenmesi için otuz günlük süre verildiğini, sürede ödeme yapılmadığını ileri sürerek kiralananın tahliyesine karar verilmesini istemiştir.",
        "Davacı {davaci}, {ilce} ilçesindeki konutun kendisinin ve ailesinin konut ihtiyacı için gerekli olduğunu, kendi oturduğu evin {yil} yıldır kirada olduğunu belirterek ihtiyaç nedeniyle tahliye talep etmiştir.",
        "Dava dilekçesinde, davalı {davali} tarafından verilen {tarih} tarihli tahliye taahhütnamesine rağmen {mahalle} Mahallesindeki taşınmazın boşaltılmadığı ileri sürülerek tahliye istenmiştir."), (
        "6098 sayılı Türk Borçlar Kanunu'nun 350. maddesi uyarınca kiraya veren, kiralananı kendisi, eşi, altsoyu veya üstsoyu için konut ya da işyeri gereksinimi sebebiyle kullanma zorunluluğu varsa sözleşmeyi dava yoluyla sona erdirebilir; ihtiyacın gerçek, samimi ve zorunlu olması gerekir.",
        "Aynı Kanun'un 352. maddesinin ikinci fıkrası gereğince kiracının bir kira yılı içinde kira bedelini ödememesi nedeniyle kendisine yazılı olarak iki haklı ihtarda bulunulmuşsa, kiraya veren kira süresinin bitiminden başlayarak bir ay içinde dava açabilir.",
        "Tahliye taahhütnamesinin kiralananın tesliminden sonra serbest irade ile verildiğinin ispat yükü kiraya verene aittir; davalının {tarih} tarihli taahhüdü boş kâğıda imza atarak verdiği savunması değerlendirilmemiştir.",
        "2004 sayılı İcra ve İflas Kanunu'nun 269/a maddesi uyarınca ödeme emrine itiraz eden kiracının birikmiş {tutar} kira borcunu ödediğini ispat edememesi halinde tahliyesine karar verilmesi gerekir.")),
    _Topic("İtirazın iptali", False, ("3. Hukuk Dairesi", "11. Hukuk Dairesi"), ("Asliye Ticaret Mahkemesi", "Asliye Hukuk Mahkemesi"), "company", (
        "Davacı vekili, müvekkili ile davalı {davali} arasındaki ticari ilişki kapsamında düzenlenen faturalardan kaynaklanan {tutar} alacağın tahsili için {sehir} {no}. İcra Dairesinde başlatılan ilamsız takibe davalının haksız olarak itiraz ettiğini ileri sürerek itirazın iptaline ve icra inkâr tazminatına karar verilmesini istemiştir.",
        "Davacı {davaci}, davalıya {tarih} tarihli sözleşme uyarınca {tutar} ödünç verdiğini, vadesinde ödeme yapılmaması üzerine başlatılan takibe davalının itiraz ederek takibi durdurduğunu belirterek itirazın iptalini talep etmiştir.",
        "Dava dilekçesinde, davalıya teslim edilen malların bedeli olan {tutar} tutarındaki cari hesap bakiyesinin ödenmediği ve {tarih} tarihinde başlatılan takibe yapılan itirazın kötüniyetli olduğu ileri sürülmüştür."), (
        "2004 sayılı İcra ve İflas Kanunu'nun 67. maddesi uyarınca itiraz edilen takip alacaklısı, itirazın tebliğinden itibaren bir yıl içinde genel hükümlere göre alacağın varlığını ispat ederek itirazın iptalini dava edebilir.",
        "Tarafların ticari defterleri üzerinde yaptırılan {tarih} tarihli bilirkişi incelemesinde, davacı defterlerinin usulüne uygun tutulduğu ve davalının {tutar} borçlu göründüğü tespit edilmiş ise de davalı defterleri ibraz edilmemiştir.",
        "İcra inkâr tazminatına hükmedilebilmesi için alacağın likit, yani belirli veya belirlenebilir olması gerekir; alacak miktarının yargılamayı gerektirdiği durumlarda borçlu inkâr tazminatından sorumlu tutulamaz.",
        "6100 sayılı Hukuk Muhakemeleri Kanunu'nun 222. maddesi uyarınca ticari defterlerin sahibi lehine delil olabilmesi için açılış ve kapanış onaylarının yaptırılmış olması ve kayıtların birbirini doğrulaması gerekir.",
        "Faturanın tebliğinden itibaren sekiz gün içinde itiraz edilmemesi, 6102 sayılı Türk Ticaret Kanunu'nun 21. maddesi uyarınca fatura içeriğinin kabul edildiği karinesini doğurur.")),
    _Topic("Menfi tespit", False, ("3. Hukuk Dairesi", "11. Hukuk Dairesi"), ("Asliye Ticaret Mahkemesi", "Asliye Hukuk Mahkemesi"), "company", (
        "Davacı vekili, müvekkili {davaci} adına düzenlenmiş gibi gösterilen {tarih} vadeli {tutar} bedelli bononun müvekkilinin eli ürünü olmadığını, imzanın sahte olduğunu ileri sürerek davalıya borçlu olmadığının tespitine karar verilmesini istemiştir.",
        "Davacı, davalı {davali} ile aralarındaki mal alım sözleşmesinin {tarih} tarihinde sona erdiğini, teminat olarak verilen {tutar} bedelli çekin kötüniyetle takibe konulduğunu belirterek menfi tespit talep etmiştir.",
        "Dava dilekçesinde, {sehir} {no}. İcra Dairesinin dosyası ile yapılan takipte istenen {tutar} tutarındaki borcun ödendiği ileri sürülerek borçlu bulunulmadığının tespiti ile kötüniyet tazminatı istenmiştir."), (
        "2004 sayılı İcra ve İflas Kanunu'nun 72. maddesi uyarınca borçlu, icra takibinden önce veya sonra menfi tespit davası açabilir; takipten sonra açılan davada alacaklının kötüniyetli olduğunun ispatı halinde borçlu lehine tazminata hükmedilir.",
        "Senetteki imzanın davacıya ait olup olmadığının belirlenmesi için {tarih} tarihinden önceki resmi belgelerdeki imza örnekleri getirtilerek Adli Tıp Kurumundan rapor alınması gerekirken eksik incelemeyle karar verilmiştir.",
        "Kambiyo senedinin teminat senedi olduğu iddiası, senet metninden anlaşılmadığı sürece yazılı delille ispat edilmelidir; tanık beyanı ile kambiyo senedinin teminat amacıyla verildiği kanıtlanamaz.",
        "Menfi tespit davasında ispat yükü kural olarak alacağın varlığını iddia eden davalıya ait ise de, {tutar} tutarındaki borcun ödendiği iddiası davacı borçlu tarafından yazılı delille kanıtlanmalıdır.")),
    _Topic("Trafik kazasından kaynaklanan tazminat", False, ("4. Hukuk Dairesi", "17. Hukuk Dairesi"), ("Asliye Hukuk Mahkemesi", "Asliye Ticaret Mahkemesi"), "insurer", (
        "Davacı vekili, {tarih} tarihinde {sehir} ili {ilce} ilçesinde davalı {davali} nezdinde zorunlu mali sorumluluk sigortası bulunan {plaka} plakalı aracın çarpması sonucu müvekkili {davaci} yönünden yüzde {oran} oranında sürekli iş göremezlik oluştuğunu ileri sürerek {tutar} maddi ve manevi tazminat istemiştir.",
        "Davacılar, destekleri {kisi} tarafından kullanılan aracın {tarih} tarihinde meydana gelen kazada devrildiğini, kazaya karışan {plaka} plakalı aracın sürücüsünün asli kusurlu olduğunu belirterek destekten yoksun kalma tazminatı olarak {tutar} talep etmiştir.",
        "Dava dilekçesinde, davacı {davaci} adına kayıtlı {plaka} plakalı aracın kazada ağır hasar gördüğü, değer kaybı ve kazanç kaybı nedeniyle {tutar} zarar oluştuğu ileri sürülmüştür."), (
        "2918 sayılı Karayolları Trafik Kanunu'nun 85. maddesi uyarınca motorlu aracın işletilmesi bir kimsenin ölümüne veya yaralanmasına ya da bir şeyin zarara uğramasına sebep olursa, araç işleteni ve bağlı olduğu teşebbüs sahibi zarardan müteselsilen sorumludur.",
        "Sürekli iş göremezlik oranının Maluliyet Tespiti İşlemleri Yönetmeliği'ne göre belirlenmesi gerekirken, {tarih} tarihli ve mevzuata uygun olmayan rapora dayanılarak yüzde {oran} oranı üzerinden hüküm kurulmuştur.",
        "6098 sayılı Türk Borçlar Kanunu'nun 56. maddesi gereğince hakim, bedensel zarar halinde olayın özelliklerini gözeterek uygun bir miktar manevi tazminata karar verebilir; hükmedilen {tutar} manevi tazminat kusur durumuyla uyumludur.",
        "Kusur oranının belirlenmesi için dosyanın Adli Tıp Kurumu Trafik İhtisas Dairesine gönderilmesi ve ceza dosyasındaki {tarih} tarihli kusur raporu ile aradaki çelişkinin giderilmesi gerekir.",
        "Destekten yoksun kalma tazminatı hesabında TRH-2010 yaşam tablosu ve progresif rant yöntemi esas alınmalı, sigortacının sorumluluğu ise poliçe limiti olan {tutar} ile sınırlı tutulmalıdır.")),
    _Topic("Hırsızlık", True, ("2. Ceza Dairesi", "6. Ceza Dairesi"), ("Asliye Ceza Mahkemesi",), "person", (
        "İddianamede; sanık {sanik} tarafından {tarih} tarihinde gece vakti {sehir} ili {ilce} ilçesindeki müştekiye ait iş yerinin kapısı zorlanarak içeri girildiği ve {esya} ile {tutar} nakit paranın çalındığı ileri sürülerek 5237 sayılı Türk Ceza Kanunu'nun 142/1-b ve 116/2. maddeleri uyarınca cezalandırılması talep edilmiştir.",
        "Müşteki {magdur}, {tarih} tarihinde park halindeki aracının camı kırılarak içindeki {esya} eşyasının çalındığını beyan etmiş, olay yerinden elde edilen parmak izinin sanık {sanik} ile eşleştiği tespit edilmiştir.",
        "Sanık {sanik}, {mahalle} Mahallesindeki inşaat alanından {esya} aldığı sırada kolluk görevlilerince suçüstü yakalanmış ve çalınan eşyanın değerinin {tutar} olduğu belirlenmiştir."), (
        "5237 sayılı Türk Ceza Kanunu'nun 141. maddesine göre zilyedinin rızası olmadan başkasına ait taşınır bir malı, kendisine veya başkasına yarar sağlamak maksadıyla bulunduğu yerden alan kişi hırsızlık suçunu işlemiş olur.",
        "Suçun gece vakti işlenmesi nedeniyle Türk Ceza Kanunu'nun 143. maddesi uyarınca cezanın artırılması gerektiği halde, olay saatine ilişkin tutanak ile müşteki {magdur} beyanı arasındaki çelişki giderilmeden uygulama yapılmıştır.",
        "Sanığın soruşturma aşamasında çalınan {esya} eşyasını müştekiye iade ettiği anlaşılmakla, Türk Ceza Kanunu'nun 168. maddesindeki etkin pişmanlık hükümlerinin tartışılmaması hukuka aykırıdır.",
        "Değer azlığı bakımından Türk Ceza Kanunu'nun 145. maddesinin uygulanıp uygulanmayacağı, suç tarihindeki ekonomik koşullar ve çalınan malın {tutar} olan değeri gözetilerek değerlendirilmelidir.",
        "Sanığın adli sicil kaydında yer alan ve {tarih} tarihinde kesinleşen mahkûmiyetin tekerrüre esas alınması, Türk Ceza Kanunu'nun 58. maddesine uygun bulunmuştur.")),
    _Topic("Dolandırıcılık", True, ("11. Ceza Dairesi", "15. Ceza Dairesi"), ("Asliye Ceza Mahkemesi",), "person", (
        "İddianamede, sanık {sanik} tarafından kendisini banka görevlisi olarak tanıtıp müşteki {magdur} ile telefonla iletişime geçildiği, hesabın güvenliğinin tehlikede olduğu söylenerek {tarih} tarihinde {tutar} paranın başka bir hesaba aktarılmasının sağlandığı ileri sürülmüştür.",
        "Sanık {sanik} hakkında, internet üzerinden verdiği satılık araç ilanına güvenen müşteki {magdur} tarafından kapora adı altında {tutar} gönderildiği halde aracın teslim edilmediği iddiasıyla kamu davası açılmıştır.",
        "Müşteki {magdur}, {tarih} tarihinde sanığın kendisini kamu görevlisi olarak tanıtarak işe yerleştirme vaadiyle {tutar} aldığını beyan etmiştir."), (
        "5237 sayılı Türk Ceza Kanunu'nun 157. maddesine göre hileli davranışlarla bir kimseyi aldatıp onun veya başkasının zararına olarak kendisine veya başkasına yarar sağlayan kişi dolandırıcılık suçunu işlemiş olur; hilenin aldatıcı nitelikte olması gerekir.",
        "Suçun bilişim sistemlerinin, banka veya kredi kurumlarının araç olarak kullanılması suretiyle işlenmesi halinde Türk Ceza Kanunu'nun 158/1-f maddesi uygulanır; sanığın yalnızca hesabını kullandırdığı durumda bu nitelikli halin koşulları tartışılmalıdır.",
        "Müştekinin {tarih} tarihli banka dekontları ile sanığın hesap hareketleri karşılaştırılarak {tutar} tutarındaki paranın hangi hesaba geçtiği ve kimin tarafından çekildiği belirlenmelidir.",
        "Sanığın kovuşturma aşamasında müştekinin {tutar} olan zararını tamamen giderdiği anlaşılmakla, Türk Ceza Kanunu'nun 168. maddesi uyarınca cezasında indirim yapılması gerekir.")),
    _Topic("Kasten yaralama", True, ("1. Ceza Dairesi", "3. Ceza Dairesi"), ("Asliye Ceza Mahkemesi",), "person", (
        "İddianamede, sanık {sanik} ile müşteki {magdur} arasında {tarih} tarihinde park yeri meselesi yüzünden çıkan tartışmada sanığın {silah} ile müştekiyi yaraladığı ve yaralanmanın basit tıbbi müdahale ile giderilemeyecek nitelikte olduğu ileri sürülmüştür.",
        "Sanık {sanik}, {ilce} ilçesindeki kahvehanede müşteki {magdur} ile kavga ederek {silah} kullanmak suretiyle müştekinin kemik kırığı oluşacak şekilde yaralanmasına neden olmakla suçlanmıştır.",
        "Olay tarihi olan {tarih} gecesi {mahalle} Mahallesinde komşular arasında çıkan kavgada müşteki {magdur} başından yaralanmış, sanık {sanik} ise eylemini meşru müdafaa kapsamında gerçekleştirdiğini savunmuştur."), (
        "5237 sayılı Türk Ceza Kanunu'nun 86. maddesinin birinci fıkrası uyarınca kasten başkasının vücuduna acı veren veya sağlığının bozulmasına neden olan kişi cezalandırılır; suçun silahla işlenmesi aynı maddenin üçüncü fıkrası uyarınca cezanın artırılmasını gerektirir.",
        "Yaralanmanın kemik kırığına neden olması halinde Türk Ceza Kanunu'nun 87/3. maddesinin uygulanabilmesi için kırığın yaşam fonksiyonlarına etkisinin {tarih} tarihli adli tıp raporu ile derecelendirilmesi gerekir.",
        "Sanığın haksız bir saldırıyı defetmek zorunluluğuyla hareket edip etmediği, Türk Ceza Kanunu'nun 25. maddesi çerçevesinde olayın başlangıcı ve tarafların yaralanma durumları dikkate alınarak tartışılmalıdır.",
        "Olayın müştekinin hakaret içerikli sözleriyle başladığının tanık {tanik} tarafından doğrulanması karşısında, sanık hakkında Türk Ceza Kanunu'nun 29. maddesindeki haksız tahrik hükmünün uygulanması gerekir.")),
    _Topic("Uyuşturucu madde ticareti", True, ("10. Ceza Dairesi",), ("Ağır Ceza Mahkemesi",), "person", (
        "İddianamede, {tarih} tarihinde {sehir} ilinde yapılan yol kontrolünde sanık {sanik} idaresindeki {plaka} plakalı araçta yapılan aramada {gram} gram {madde} ele geçirildiği belirtilerek sanığın uyuşturucu madde ticareti suçundan cezalandırılması istenmiştir.",
        "Fiziki takip sonucunda sanık {sanik} ile kimliği belirlenemeyen bir kişi arasında {mahalle} Mahallesinde el değiştirme yapıldığının görüldüğü, sanığın üzerinde {gram} gram {madde} ile {tutar} nakit para bulunduğu tespit edilmiştir.",
        "Sanık {sanik} hakkında, {ilce} ilçesindeki ikametinde yapılan aramada hassas terazi, paketleme malzemeleri ve {gram} gram {madde} ele geçirildiği gerekçesiyle kamu davası açılmıştır."), (
        "5237 sayılı Türk Ceza Kanunu'nun 188/3. maddesi uyarınca uyuşturucu veya uyarıcı maddeyi ruhsatsız olarak satan, başkalarına veren veya bulunduran kişi cezalandırılır; ele geçen maddenin miktarı ve paketlenme biçimi ticaret kastının belirlenmesinde önemlidir.",
        "Ele geçirilen maddenin {gram} gram olduğu ve kişisel kullanım savunmasını destekleyen {tarih} tarihli tahlil raporu karşısında, eylemin Türk Ceza Kanunu'nun 191. maddesi kapsamında kullanmak için bulundurma suçunu oluşturup oluşturmadığı tartışılmalıdır.",
        "Arama işleminin 5271 sayılı Ceza Muhakemesi Kanunu'nun 116. ve 119. maddelerine uygun olarak hakim kararı veya Cumhuriyet savcısının yazılı emriyle yapılıp yapılmadığı denetlenmeli, hukuka aykırı elde edilen deliller hükme esas alınmamalıdır.",
        "Kriminal polis laboratuvarının {tarih} tarihli ekspertiz raporunda ele geçen maddenin {madde} olduğu ve net {gram} gram geldiği belirlenmiştir.")),
)

INTRO_HUKUK = (
    "Taraflar arasındaki {dava} davasının yapılan yargılaması sonunda {mahkeme}nce davanın {karar_sonucu} dair verilen {ilk_tarih} tarihli hükmün süresi içinde {temyiz_eden} tarafından temyiz edilmesi üzerine dosya incelendi, gereği düşünüldü:",
    "Taraflar arasındaki {dava} davasının yapılan yargılaması sonunda {mahkeme}nce verilen karara karşı istinaf yoluna başvurulması üzerine {bam} Bölge Adliye Mahkemesi {daire}. Hukuk Dairesince verilen karar {temyiz_eden} tarafından temyiz edilmekle, dosyadaki belgeler okunup gereği düşünüldü:",
    "Yukarıda tarih ve numarası gösterilen {dava} davasına ilişkin hükmün {temyiz_eden} tarafından temyizen incelenmesi istenilmekle, Tetkik Hâkimi {kisi} tarafından düzenlenen rapor dinlendikten sonra dosya incelendi, gereği düşünüldü:")
INTRO_CEZA = (
    "{mahkeme}nce verilen {ilk_tarih} tarihli hükmün {temyiz_eden} tarafından temyiz edilmesi üzerine dosya Yargıtay Cumhuriyet Başsavcılığının tebliğnamesi ile Dairemize gönderilmekle incelenerek gereği düşünüldü:",
    "Sanık {sanik} hakkında {suc} suçundan kurulan hükmün {temyiz_eden} tarafından süresinde temyiz edilmesi üzerine dosya incelendi, gereği düşünüldü:",
    "{bam} Bölge Adliye Mahkemesi {daire}. Ceza Dairesince istinaf başvurusunun esastan reddine dair verilen kararın {temyiz_eden} tarafından temyiz edilmesi üzerine dosya görüşüldü:")
CEVAP = (
    "CEVAP: Davalı vekili, davanın zamanaşımına uğradığını, müvekkilinin herhangi bir borcunun bulunmadığını ve talep edilen {tutar} tutarın fahiş olduğunu savunarak davanın reddini istemiştir.",
    "CEVAP: Davalı {davali}, {tarih} tarihli cevap dilekçesinde husumet itirazında bulunmuş, esas yönünden ise iddiaların gerçeği yansıtmadığını belirterek davanın reddini talep etmiştir.",
    "CEVAP: Davalı taraf, dava dilekçesinin usulüne uygun tebliğine rağmen süresi içinde cevap vermemiş, {tarih} tarihli duruşmada ise davayı kabul etmediğini beyan etmiştir.",
    "CEVAP: Davalı vekili, davacının iddialarını ispat edemediğini ve dayanılan belgelerin {sehir2} ilinde düzenlendiğini ileri sürerek öncelikle yetki itirazında bulunmuş, esastan davanın reddini savunmuştur.")
SAVUNMA = (
    "SAVUNMA: Sanık, kollukta susma hakkını kullanmış, mahkemedeki savunmasında ise atılı suçu işlemediğini, olay saatinde {sehir2} ilinde bulunduğunu beyan etmiştir.",
    "SAVUNMA: Sanık {sanik}, suçlamayı kabul etmediğini, müşteki ile aralarında {tutar} borç meselesi bulunduğunu ve bu nedenle hakkında asılsız şikâyette bulunulduğunu savunmuştur.",
    "SAVUNMA: Sanık müdafii, dosyada sanığın eylemine ilişkin kesin delil bulunmadığını, şüpheden sanık yararlanır ilkesi gereğince beraat kararı verilmesi gerektiğini ileri sürmüştür.")
GENERIC_HUKUK = (
    "6100 sayılı Hukuk Muhakemeleri Kanunu'nun 266. maddesi uyarınca çözümü özel veya teknik bilgiyi gerektiren hallerde bilirkişinin görüşü alınır; ancak hakim raporla bağlı olmayıp onu diğer delillerle birlikte serbestçe takdir eder.",
    "Hükmün gerekçesinin HMK'nın 297. maddesi uyarınca tarafların iddia ve savunmalarının özetini, çekişmeli vakıalar hakkında toplanan delilleri ve bunların tartışılmasını içermesi zorunludur.",
    "Anayasa'nın 141. maddesi gereğince mahkemelerin bütün kararları gerekçeli olarak yazılır; gerekçeden yoksun bir hükmün Yargıtay denetimine elverişli olduğundan söz edilemez.",
    "Taraflarca {tarih} tarihli dilekçe ile bildirilen delillerin toplanmadan karar verilmesi, hukuki dinlenilme hakkını düzenleyen HMK'nın 27. maddesine aykırıdır.",
    "Temerrüt tarihinin {tarih} tarihli ihtarnamenin tebliğ tarihi olduğu gözetilmeden dava tarihinden itibaren faize hükmedilmesi de ayrı bir bozma nedenidir.",
    "Kabul edilen {tutar} alacak miktarı üzerinden Avukatlık Asgari Ücret Tarifesi'ne göre nispi vekalet ücretine hükmedilmesi gerekirken maktu vekalet ücreti takdiri isabetsizdir.",
    "Harçlar Kanunu uyarınca karar ve ilam harcının kabul edilen {tutar} üzerinden nispi olarak hesaplanması gerektiği gözden kaçırılmıştır.",
    "Dosya kapsamına, toplanan delillere ve hükmün dayandığı gerektirici sebeplere göre, temyiz dilekçesinde ileri sürülen diğer itirazlar yerinde görülmemiştir.")
GENERIC_CEZA = (
    "5271 sayılı Ceza Muhakemesi Kanunu'nun 230. maddesi uyarınca mahkûmiyet hükmünün gerekçesinde, ulaşılan kanaatin denetime olanak verecek şekilde delillerle açıklanması gerekir.",
    "Mahkûmiyete yeterli, her türlü şüpheden uzak, kesin ve inandırıcı delil bulunmadığı hallerde şüpheden sanık yararlanır ilkesi gereğince sanığın beraatine karar verilmesi gerekir.",
    "Türk Ceza Kanunu'nun 62. maddesi uyarınca takdiri indirim uygulanırken sanığın geçmişi, sosyal ilişkileri ve fiilden sonraki davranışları gibi kanuni ölçütlerin gösterilmesi gerekir.",
    "Anayasa Mahkemesi'nin 08.10.2015 tarihli ve 2014/140 Esas, 2015/85 Karar sayılı iptal kararı doğrultusunda Türk Ceza Kanunu'nun 53. maddesindeki hak yoksunluklarının yeniden değerlendirilmesi gerekir.",
    "Sanık hakkında 5271 sayılı Kanun'un 231. maddesi uyarınca hükmün açıklanmasının geri bırakılmasına ilişkin objektif koşulların bulunup bulunmadığı tartışılmadan karar verilmesi yasaya aykırıdır.",
    "Soruşturma evresinde {tarih} tarihinde alınan tanık anlatımları ile kovuşturma evresindeki beyanlar arasındaki çelişkiler giderilmeden hüküm kurulması hukuka aykırıdır.",
    "Sanığın {tarih} tarihinden itibaren gözaltında ve tutuklulukta geçen sürelerinin Türk Ceza Kanunu'nun 63. maddesi uyarınca cezasından mahsubu gerektiği gözetilmelidir.")
EVIDENCE = (
    "Tanık {tanik}, taraflarla {yil} yıldır tanıştığını, {tarih} tarihindeki olaylara bizzat tanık olmadığını, ancak konuyu {kisi} isimli komşusundan duyduğunu beyan etmiştir.",
    "Dinlenen tanık {tanik}, {mahalle} Mahallesinde oturduğunu, {tarih} tarihinde yaşanan olayı yakından gördüğünü ve anlatımlarının tutanağa eksiksiz geçirildiğini ifade etmiştir.",
    "Tanık {tanik} beyanında, {tarih} günü öğleden sonra taraflar arasında sert bir tartışma yaşandığını ve ortamda {kisi} isimli kişinin de bulunduğunu söylemiştir.",
    "Tanık {tanik}, dosyaya sunulan {tarih} tarihli belgeyi daha önce görmediğini, ancak {yil} yıl önce {sehir2} ilinde benzer bir uyuşmazlık yaşandığını hatırladığını açıklamıştır.",
    "Bilirkişi {bilirkisi} tarafından düzenlenen {tarih} tarihli ek raporda, itirazlar değerlendirilerek önceki hesaplamada {tutar} tutarında fark bulunduğu açıklanmıştır.",
    "{tarih} tarihli duruşmada hazır bulunan {tanik}, dosyadaki tespitlerin eksik olduğunu ve {sehir2} ilinde düzenlenen tutanağın da incelenmesi gerektiğini belirtmiştir.",
    "Kolluk tarafından {tarih} tarihinde düzenlenen tutanakta, {mahalle} Mahallesinde yapılan incelemede {kisi} isimli görevlinin de hazır bulunduğu ve tespitlerin fotoğraflarla belgelendiği görülmüştür.",
    "Mahkemece {sehir2} ilindeki kurumlara yazılan müzekkerelere verilen {tarih} tarihli cevaplarda, uyuşmazlık konusu işlemlere ilişkin kayıtların {yil} yıl süreyle saklandığı bildirilmiştir.",
    "Tanık {tanik}, {gun} gün boyunca olayın tarafları ile aynı ortamda bulunduğunu, {kisi} ile birlikte yaptıkları görüşmede uyuşmazlığın sulh yoluyla çözülmesinin konuşulduğunu anlatmıştır.")
FINAL = {  # (ceza, bozma) -> closing reasoning sentences
    (False, True): (
        "Bu durumda mahkemece yapılacak iş, açıklanan ilkeler doğrultusunda eksik inceleme tamamlanarak sonucuna göre karar vermekten ibaret iken yazılı şekilde hüküm kurulması usul ve yasaya aykırı olup bozmayı gerektirmiştir.",
        "Açıklanan nedenlerle, taraf delilleri birlikte değerlendirilmeden ve {tarih} tarihli rapordaki çelişki giderilmeden karar verilmesi doğru görülmemiş, hükmün bozulması gerekmiştir."),
    (False, False): (
        "Dosyadaki yazılara, kararın dayandığı delillerle gerektirici sebeplere ve delillerin takdirinde bir isabetsizlik görülmemesine göre yerinde olmayan temyiz itirazlarının reddi ile hükmün onanması gerekmiştir.",
        "Yapılan yargılama, toplanan deliller ve {tarih} tarihli bilirkişi raporu birlikte değerlendirildiğinde, kararda usul ve esas yönünden hukuka aykırılık bulunmadığı anlaşılmıştır."),
    (True, True): (
        "Kabule göre de, açıklanan hususlar gözetilmeden eksik kovuşturma ile yazılı şekilde hüküm kurulması hukuka aykırı olup temyiz itirazları bu nedenle yerinde görülmüştür.",
        "Bu itibarla, sanığın hukuki durumunun yukarıda belirtilen ilkeler çerçevesinde yeniden değerlendirilmesi için hükmün bozulması gerekmiştir."),
    (True, False): (
        "Toplanıp karar yerinde gösterilen delillere ve mahkemenin oluşa uygun olarak vicdani kanaatine dayanan takdirine göre temyiz itirazları yerinde görülmemiştir.",
        "Eylemin doğru olarak nitelendirildiği, cezayı azaltıcı ve artırıcı sebeplerin gözetildiği anlaşılmakla hükümde bozmayı gerektirir bir neden bulunmamaktadır."),
}
SONUC = {
    (False, True): (
        "SONUÇ: Yukarıda açıklanan sebeplerle temyiz olunan kararın BOZULMASINA, peşin alınan temyiz harcının istek halinde iadesine, dosyanın ilk derece mahkemesine, kararın bir örneğinin {bam} Bölge Adliye Mahkemesine gönderilmesine, {karar_tarihi} tarihinde {oy} karar verildi.",
        "SONUÇ: Açıklanan nedenlerle temyiz itirazlarının kabulü ile kararın 6100 sayılı HMK'nın 371. maddesi uyarınca BOZULMASINA, {harc} peşin harcın istek halinde iadesine, {karar_tarihi} tarihinde {oy} karar verildi."),
    (False, False): (
        "SONUÇ: Temyiz olunan kararın açıklanan nedenlerle ONANMASINA, aşağıda yazılı onama harcının temyiz edenden alınmasına, dosyanın ilk derece mahkemesine gönderilmesine, {karar_tarihi} tarihinde {oy} karar verildi.",
        "SONUÇ: Temyiz itirazlarının reddi ile usul ve yasaya uygun bulunan kararın 6100 sayılı HMK'nın 370/1. maddesi uyarınca ONANMASINA, {harc} bakiye harcın temyiz edenden alınmasına, {karar_tarihi} tarihinde {oy} karar verildi."),
    (True, True): (
        "SONUÇ: Açıklanan nedenlerle temyiz itirazları yerinde görüldüğünden hükmün 5320 sayılı Kanun'un 8/1. maddesi gereğince uygulanmasına devam olunan 1412 sayılı CMUK'un 321. maddesi uyarınca BOZULMASINA, {karar_tarihi} tarihinde {oy} karar verildi.",
        "SONUÇ: Hükmün 5271 sayılı CMK'nın 302/2. maddesi uyarınca BOZULMASINA, dosyanın yeniden yargılama yapılmak üzere {mahkeme}ne gönderilmesine, {karar_tarihi} tarihinde {oy} karar verildi."),
    (True, False): (
        "SONUÇ: Tebliğnamedeki düşünceye uygun olarak temyiz itirazlarının reddiyle hükmün ONANMASINA, {karar_tarihi} tarihinde {oy} karar verildi.",
        "SONUÇ: Hükümde bozmayı gerektirecek bir hukuka aykırılık bulunmadığından temyiz itirazlarının esastan reddiyle hükmün 5271 sayılı CMK'nın 302/1. maddesi uyarınca ONANMASINA, {karar_tarihi} tarihinde {oy} karar verildi."),
}
